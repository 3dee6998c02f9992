package migrate

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// provisionerV1alpha5 converts the spec of a karpenter.sh/v1alpha5 Provisioner. An inline
// provider becomes an EC2NodeClass of the Provisioner's name; a providerRef to an
// AWSNodeTemplate becomes a nodeClassRef to the EC2NodeClass of the template's name.
func (m *migration) provisionerV1alpha5(f *fields, p *v1alpha1.Provisioner) {
	p.Spec.Requirements = requirements(f, "requirements")
	p.Spec.Labels = labels(f, "labels")
	f.drop("annotations", "nodewright does not annotate the nodes it launches")
	p.Spec.Taints = taints(f, "taints")
	p.Spec.StartupTaints = taints(f, "startupTaints")
	if k := f.object("kubeletConfiguration"); k != nil {
		p.Spec.Kubelet = kubelet(k)
	}
	if l := f.object("limits"); l != nil {
		p.Spec.Limits = l.resources("resources")
		l.done()
	}
	p.Spec.TTLSecondsAfterEmpty = f.int64Ptr("ttlSecondsAfterEmpty")
	p.Spec.TTLSecondsUntilExpired = f.int64Ptr("ttlSecondsUntilExpired")
	p.Spec.Weight = f.int32Ptr("weight")
	if c := f.object("consolidation"); c != nil {
		if enabled := c.boolPtr("enabled"); enabled != nil && *enabled {
			// Karpenter's consolidation (which excludes ttlSecondsAfterEmpty) is
			// disruption's WhenEmptyOrUnderutilized; the TTL of expiry goes with it.
			d := &v1alpha1.Disruption{ConsolidationPolicy: v1alpha1.ConsolidationPolicyWhenEmptyOrUnderutilized,
				ConsolidateAfter: ptrTo(v1alpha1.NillableDuration("0s")), ExpireAfter: ptrTo(v1alpha1.Never)}
			if ttl := p.Spec.TTLSecondsUntilExpired; ttl != nil {
				d.ExpireAfter = ptrTo(v1alpha1.NillableDuration((time.Duration(*ttl) * time.Second).String()))
			}
			p.Spec.Disruption, p.Spec.TTLSecondsAfterEmpty, p.Spec.TTLSecondsUntilExpired = d, nil, nil
		}
		c.done()
	}

	p.Spec.NodeClassRef = v1alpha1.NodeClassReference{Name: p.Name}
	provider, ref := f.object("provider"), f.object("providerRef")
	switch {
	case provider != nil:
		nc := newNodeClass(f.obj, p.Name)
		provider.ignore("apiVersion", "kind") // the type of the raw extension, not configuration
		nodeClassV1alpha1(provider, &nc.Spec)
		provider.done()
		m.addNodeClass(f.obj, nc)
		if ref != nil {
			ref.obj.warn(ref.path, "both provider and providerRef are set: the provider is carried over")
		}
	case ref != nil:
		if name, ok := ref.str("name"); ok {
			p.Spec.NodeClassRef.Name = name
		}
		if kind, ok := ref.str("kind"); ok && kind != "AWSNodeTemplate" {
			ref.warn("kind", "only AWSNodeTemplates are migrated: the Provisioner references the EC2NodeClass %q", p.Spec.NodeClassRef.Name)
		}
		ref.ignore("apiVersion")
		ref.done()
	default:
		f.warn("provider", "missing: the Provisioner references the EC2NodeClass %q, which must be created", p.Name)
	}
	f.done()
}

// nodePoolV1 converts the spec of a karpenter.sh/v1 NodePool.
func (m *migration) nodePoolV1(f *fields, p *v1alpha1.Provisioner) {
	// Karpenter v1's default: nodes expire after 30 days.
	expireAfter := ptrTo(v1alpha1.NillableDuration("720h"))
	if t := f.object("template"); t != nil {
		if meta := t.object("metadata"); meta != nil {
			p.Spec.Labels = labels(meta, "labels")
			meta.drop("annotations", "nodewright does not annotate the nodes it launches")
			meta.done()
		}
		if s := t.object("spec"); s != nil {
			p.Spec.Requirements = requirements(s, "requirements")
			p.Spec.Taints = taints(s, "taints")
			p.Spec.StartupTaints = taints(s, "startupTaints")
			if ref := s.object("nodeClassRef"); ref != nil {
				p.Spec.NodeClassRef.Name, _ = ref.str("name")
				if kind, ok := ref.str("kind"); ok && kind != "EC2NodeClass" {
					ref.warn("kind", "only EC2NodeClasses are migrated: the Provisioner references the EC2NodeClass %q", p.Spec.NodeClassRef.Name)
				}
				ref.ignore("group")
				ref.done()
			} else {
				s.warn("nodeClassRef", "missing: set spec.nodeClassRef.name in the Provisioner")
			}
			expireAfter = duration(s, "expireAfter")
			s.drop("terminationGracePeriod", "not supported: nodewright drains nodes until their pods are evicted, respecting PodDisruptionBudgets")
			s.done()
		}
		t.done()
	}
	m.disruptionV1(f, p)
	p.Spec.Disruption.ExpireAfter = expireAfter
	p.Spec.Limits = f.resources("limits")
	p.Spec.Weight = f.int32Ptr("weight")
	f.done()
}

// disruptionV1 converts a NodePool's disruption, field for field: consolidationPolicy,
// consolidateAfter and budgets. Absent fields take Karpenter's defaults, which are
// nodewright's too: WhenEmptyOrUnderutilized, after 0s, budgets of 10 %.
func (m *migration) disruptionV1(f *fields, p *v1alpha1.Provisioner) {
	d := f.object("disruption")
	if d == nil {
		d = newFields(f.obj, f.at("disruption"), map[string]any{})
	}
	out := &v1alpha1.Disruption{ConsolidationPolicy: v1alpha1.ConsolidationPolicyWhenEmptyOrUnderutilized}
	switch policy, _ := d.str("consolidationPolicy"); policy {
	case "", "WhenEmptyOrUnderutilized":
	case "WhenEmpty":
		out.ConsolidationPolicy = v1alpha1.ConsolidationPolicyWhenEmpty
	case "WhenUnderutilized":
		d.warn("consolidationPolicy", "WhenUnderutilized (v1beta1) is WhenEmptyOrUnderutilized")
	default:
		d.warn("consolidationPolicy", "unknown policy %s: WhenEmptyOrUnderutilized, the default, instead", policy)
	}
	out.ConsolidateAfter = duration(d, "consolidateAfter")
	for _, b := range d.objects("budgets") {
		budget := v1alpha1.Budget{}
		budget.Nodes, _ = b.str("nodes")
		budget.Schedule = b.strPtr("schedule")
		if s, ok := b.str("duration"); ok {
			if v, err := time.ParseDuration(s); err == nil {
				budget.Duration = &metav1.Duration{Duration: v}
			} else {
				b.warn("duration", "not a duration: not carried over")
			}
		}
		for _, r := range b.strings("reasons") {
			budget.Reasons = append(budget.Reasons, v1alpha1.DisruptionReason(r))
		}
		b.done()
		out.Budgets = append(out.Budgets, budget)
	}
	d.done()
	p.Spec.Disruption = out
}

// duration returns the duration such as "720h", or "Never", at key; nil if absent, and a
// warning if it is neither.
func duration(f *fields, key string) *v1alpha1.NillableDuration {
	s, ok := f.str(key)
	if !ok {
		return nil
	}
	if v, valid := v1alpha1.NillableDuration(s).Duration(); !valid && s != string(v1alpha1.Never) || v < 0 {
		f.warn(key, "not a duration: not carried over")
		return nil
	}
	return ptrTo(v1alpha1.NillableDuration(s))
}

func ptrTo[T any](v T) *T { return &v }
