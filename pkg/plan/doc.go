// Package plan is nodewright's planner: given pending pods, the cluster's nodes and pods, its
// DaemonSets and the instance types each Provisioner may launch, which new nodes would the
// profile's own PreFilter and Filter plugins accept for the pods, at the lowest price. It
// answers the question scale-up asks (the Provision plugin's rounds) and the one scale-down
// asks ("the pods of these nodes, on the cluster without them, plus at most N new nodes").
//
// Plan is pure: it reads its Input and changes nothing, neither the input nor the cluster.
// It knows nothing of PostFilter, reservations or informers; the caller gathers the
// cluster (nodes, bound pods, stand-ins of nodes not registered yet, see StandIn) and turns
// the Result into NodeClaims (NodeClaimFor).
//
// How a plan is made (see docs/concepts.md, "How a choice is made"):
//   - templates.go: one Template per Provisioner, instance type and available offering, its
//     Node as it will register (template.go), with the labels chosen for open requirement
//     keys (labels.go);
//   - order.go: pods largest first, the targets of required pod affinity before the pods
//     that need them;
//   - place.go, open.go: each pod onto the first open node whose filters accept it, else a
//     new node of the cheapest template that does (prefer.go: within PreferenceTolerance, the
//     one the pod's preferences score highest); prescreen.go decides by arithmetic and labels
//     what need not be filtered; defaults.go holds nodewright's own defaults;
//   - open.go (confirm): every placement checked again with the whole plan in place;
//   - finalize.go: each node's instance type options, cheapest first;
//   - explain.go: why a pod could not be planned.
//
// The Simulator (simulator.go) runs the framework's plugins (framework.go) over a snapshot
// (snapshot.go) that gains and loses nodes as the packer plans; the packer changes it only
// through the Simulator's operations. Its checks judge topology spread both ways
// (spread.go): a placement must keep the pods placed before it where the scheduler would
// still put them, as confirm requires. PreFilter runs over views of the snapshot (view.go):
// for the pods of one view key, only the pods and domains PodTopologySpread and
// InterPodAffinity count, kept up to date as the snapshot changes, so that a run holds
// until what it read changes, and a run without spread constraints follows the view's pods
// through the plugins' AddPod and RemovePod extensions; a view's run is the run over the
// whole snapshot (TestViewsJudgeAsTheWholeSnapshot, TestViewsChangeNoPlan).
//
// What decides how much checking a pod needs. Each predicate is decided in one place:
//
//	predicate             meaning                                           decided in
//	constrained           the pod's own spec lets its fit depend on other   pods.go (audit:
//	                      pods: inter-pod (anti-)affinity, topology spread,  interactions.go)
//	                      host ports, node volumes, resource claims
//	allConstrained        every pod may depend on others, whatever its      NewSimulator
//	                      spec: a hard default spread or a Filter plugin
//	                      the audit does not list
//	independent           not constrained, not allConstrained, and no       Simulator.independent
//	                      required anti-affinity or hard topology spread
//	                      constraint of a pod in the snapshot selects it:
//	                      its fit on an empty template decides, by
//	                      arithmetic, its fit anywhere; verdicts cached
//	movable               independent, and no inter-pod constraint of any   Simulator.movable
//	                      pod in the snapshot selects it: it may change
//	                      zone or go into a launched node's room
//	invariantOnly         its constraints name only topology keys every     pods.go
//	                      candidate of an open node shares, and it has no
//	                      volumes: its verdict is the same on every
//	                      candidate of the node
//	stateFreePreFilters   every PreFilter plugin's outcome for an           NewSimulator
//	                      independent pod depends on the pod alone: its
//	                      PreFilter state is reused across nodes; and the
//	                      plugins that read other pods are the in-tree
//	                      ones views model (so runs go over views unless
//	                      a hard default spread selects pods by owner)
//	relevant              a pod a view's terms select, or whose required    view.relevant
//	                      anti-affinity selects the view's pods: what the
//	                      view's PreFilter runs read
//	sameOnEveryCandidate  the Filter plugins whose rejection of an          place.go
//	                      invariantOnly pod holds for every candidate
package plan
