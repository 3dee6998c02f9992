package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// listKinds maps nodewright's resources to their list kinds, as the fake dynamic client and
// dynamic informers need them.
var listKinds = map[schema.GroupVersionResource]string{
	v1alpha1.NodeClaimGVR:    "NodeClaimList",
	v1alpha1.ProvisionerGVR:  "ProvisionerList",
	v1alpha1.EC2NodeClassGVR: "EC2NodeClassList",
}

// objects is a small typed client for NodeClaims, Provisioners and EC2NodeClasses over the
// dynamic client. All three are cluster-scoped. Once Run has started the informers, they are
// read from their caches (claims, provisioners, nodeClasses); every write goes to the API,
// whose resourceVersion check turns a stale read into a conflict and a retry.
type objects struct {
	client dynamic.Interface
	// claims (indexed by providerIDIndex), provisioners and nodeClasses are the informers'
	// caches; nil reads through the API.
	claims       cache.Indexer
	provisioners cache.Indexer
	nodeClasses  cache.Indexer
	// written are the NodeClaims as this process last wrote them, while the claims cache
	// has not caught up with the writes (nil: none kept).
	written *claimWrites
}

// claimWrites keeps, by name, each NodeClaim as the lifecycle last wrote it and the
// resourceVersions its writes replaced, until the claims cache shows the write. A
// controller woken by its own write's predecessor (the informer's events trail the writes:
// a claim is launched, registered and initialized within a second) reads the claim as it
// wrote it instead of the version it replaced: on a 1,000-pod scale-up, 200 of the 800
// status writes conflicted for that, each followed by a GET, all through the rate limit
// the scheduler binds with.
type claimWrites struct {
	mu     sync.Mutex
	byName map[string]claimWrite
}

// claimWrite is a NodeClaim as written, and the resourceVersions the writes replaced.
type claimWrite struct {
	claim    *v1alpha1.NodeClaim
	replaced sets.Set[string]
}

func newClaimWrites() *claimWrites { return &claimWrites{byName: map[string]claimWrite{}} }

// wrote notes that from, a NodeClaim as read, was replaced by written.
func (w *claimWrites) wrote(from, written *v1alpha1.NodeClaim) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	rec, ok := w.byName[written.Name]
	if !ok || rec.claim.UID != written.UID {
		rec = claimWrite{replaced: sets.New[string]()}
	}
	rec.replaced.Insert(from.ResourceVersion)
	rec.claim = written.DeepCopy()
	w.byName[written.Name] = rec
}

// fresher returns the claim as last written when cached (the claim as the cache has it) is a
// version that write replaced; else it returns cached, and forgets the write: the cache
// shows it, or a version the lifecycle did not replace.
func (w *claimWrites) fresher(cached *v1alpha1.NodeClaim) *v1alpha1.NodeClaim {
	if w == nil {
		return cached
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	rec, ok := w.byName[cached.Name]
	if !ok {
		return cached
	}
	if rec.claim.UID == cached.UID && cached.ResourceVersion != rec.claim.ResourceVersion && rec.replaced.Has(cached.ResourceVersion) {
		return rec.claim.DeepCopy()
	}
	delete(w.byName, cached.Name)
	return cached
}

// forget drops what is kept of the NodeClaim name.
func (w *claimWrites) forget(name string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.byName, name)
}

func (o objects) getNodeClaim(ctx context.Context, name string) (*v1alpha1.NodeClaim, error) {
	if o.claims != nil {
		nc, err := fromCache[v1alpha1.NodeClaim](o.claims, v1alpha1.NodeClaimGVR, name)
		if err != nil {
			if apierrors.IsNotFound(err) {
				o.written.forget(name)
			}
			return nil, err
		}
		return o.written.fresher(nc), nil
	}
	u, err := o.client.Resource(v1alpha1.NodeClaimGVR).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return v1alpha1.FromUnstructured[v1alpha1.NodeClaim](u)
}

// fromCache returns a copy of the object named name in store, or the API's NotFound.
func fromCache[T any](store cache.Store, gvr schema.GroupVersionResource, name string) (*T, error) {
	obj, exists, err := store.GetByKey(name)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, apierrors.NewNotFound(gvr.GroupResource(), name)
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("%s %s in the cache is a %T", gvr.Resource, name, obj)
	}
	// The conversion copies: callers may change what they get.
	return v1alpha1.FromUnstructured[T](u)
}

func (o objects) listNodeClaims(ctx context.Context) ([]*v1alpha1.NodeClaim, error) {
	if o.claims != nil {
		return claimsOf(o.claims.List())
	}
	list, err := o.client.Resource(v1alpha1.NodeClaimGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodeclaims: %w", err)
	}
	out := make([]*v1alpha1.NodeClaim, 0, len(list.Items))
	for i := range list.Items {
		nc, err := v1alpha1.FromUnstructured[v1alpha1.NodeClaim](&list.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, nc)
	}
	return out, nil
}

// patchNodeClaimFinalizers sets the finalizers of nodeClaim to finalizers and returns the
// claim as written. It sends a JSON
// merge patch of the metadata alone, guarded by nodeClaim's resourceVersion (a stale read is
// a conflict): the spec the API holds is never sent back re-encoded, so the claim's immutable
// spec cannot seem changed by how a Go struct encodes it.
func (o objects) patchNodeClaimFinalizers(ctx context.Context, nodeClaim *v1alpha1.NodeClaim, finalizers []string) (*v1alpha1.NodeClaim, error) {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": nodeClaim.ResourceVersion,
		"finalizers":      finalizers,
	}})
	if err != nil {
		return nil, fmt.Errorf("encoding the finalizers of nodeclaim %s: %w", nodeClaim.Name, err)
	}
	u, err := o.client.Resource(v1alpha1.NodeClaimGVR).Patch(ctx, nodeClaim.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return nil, fmt.Errorf("setting the finalizers of nodeclaim %s: %w", nodeClaim.Name, err)
	}
	return o.asWritten(nodeClaim, u)
}

// updateNodeClaimStatus applies change to nodeClaim and writes the status it changed; change
// reports whether it changed anything, and nothing is written if not. Only the status
// subresource is written, with a JSON merge patch of what change did to the status, guarded
// by the resourceVersion read. On a conflict (another controller wrote the claim since, or
// the cache had not caught up yet), the claim is read again from the API and change applied
// to that: the conflicts of a busy cluster are retried here, not reported. It returns the
// claim as written, or nodeClaim as changed if nothing was to be written.
func (o objects) updateNodeClaimStatus(ctx context.Context, nodeClaim *v1alpha1.NodeClaim, change func(*v1alpha1.NodeClaim) bool) (*v1alpha1.NodeClaim, error) {
	current := nodeClaim
	var written *v1alpha1.NodeClaim
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if current == nil {
			u, err := o.client.Resource(v1alpha1.NodeClaimGVR).Get(ctx, nodeClaim.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if current, err = v1alpha1.FromUnstructured[v1alpha1.NodeClaim](u); err != nil {
				return err
			}
		}
		before := current.Status.DeepCopy()
		if !change(current) {
			written = current
			return nil
		}
		var err error
		written, err = o.patchNodeClaimStatus(ctx, current, before)
		current = nil // read afresh if this was a conflict
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("updating status of nodeclaim %s: %w", nodeClaim.Name, err)
	}
	if written != nodeClaim {
		*nodeClaim = *written
	}
	return nodeClaim, nil
}

// patchNodeClaimStatus writes the difference between nodeClaim's status and before to the
// status subresource, as a JSON merge patch guarded by nodeClaim's resourceVersion.
func (o objects) patchNodeClaimStatus(ctx context.Context, nodeClaim *v1alpha1.NodeClaim, before *v1alpha1.NodeClaimStatus) (*v1alpha1.NodeClaim, error) {
	oldJSON, err := json.Marshal(before)
	if err != nil {
		return nil, fmt.Errorf("encoding status: %w", err)
	}
	newJSON, err := json.Marshal(&nodeClaim.Status)
	if err != nil {
		return nil, fmt.Errorf("encoding status: %w", err)
	}
	statusPatch, err := jsonpatch.CreateMergePatch(oldJSON, newJSON)
	if err != nil {
		return nil, fmt.Errorf("computing the status patch: %w", err)
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": nodeClaim.ResourceVersion},
		"status":   json.RawMessage(statusPatch),
	})
	if err != nil {
		return nil, fmt.Errorf("encoding the status patch: %w", err)
	}
	u, err := o.client.Resource(v1alpha1.NodeClaimGVR).Patch(ctx, nodeClaim.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return nil, err
	}
	return o.asWritten(nodeClaim, u)
}

// asWritten converts u, the API's answer to a write of from, and keeps it as the claim last
// written (claimWrites).
func (o objects) asWritten(from *v1alpha1.NodeClaim, u *unstructured.Unstructured) (*v1alpha1.NodeClaim, error) {
	written, err := v1alpha1.FromUnstructured[v1alpha1.NodeClaim](u)
	if err != nil {
		return nil, err
	}
	o.written.wrote(from, written)
	return written, nil
}

// deleteNodeClaim deletes the NodeClaim; one that is already gone counts as deleted.
func (o objects) deleteNodeClaim(ctx context.Context, name string) error {
	err := o.client.Resource(v1alpha1.NodeClaimGVR).Delete(ctx, name, metav1.DeleteOptions{})
	o.written.forget(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting nodeclaim %s: %w", name, err)
	}
	return nil
}

func (o objects) getProvisioner(ctx context.Context, name string) (*v1alpha1.Provisioner, error) {
	if o.provisioners != nil {
		return fromCache[v1alpha1.Provisioner](o.provisioners, v1alpha1.ProvisionerGVR, name)
	}
	u, err := o.client.Resource(v1alpha1.ProvisionerGVR).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return v1alpha1.FromUnstructured[v1alpha1.Provisioner](u)
}

func (o objects) getEC2NodeClass(ctx context.Context, name string) (*v1alpha1.EC2NodeClass, error) {
	if o.nodeClasses != nil {
		return fromCache[v1alpha1.EC2NodeClass](o.nodeClasses, v1alpha1.EC2NodeClassGVR, name)
	}
	u, err := o.client.Resource(v1alpha1.EC2NodeClassGVR).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return v1alpha1.FromUnstructured[v1alpha1.EC2NodeClass](u)
}

// claimsOf converts the NodeClaims of a cache listing.
func claimsOf(objs []any) ([]*v1alpha1.NodeClaim, error) {
	out := make([]*v1alpha1.NodeClaim, 0, len(objs))
	for _, obj := range objs {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return nil, fmt.Errorf("nodeclaim in the cache is a %T", obj)
		}
		nc, err := v1alpha1.FromUnstructured[v1alpha1.NodeClaim](u)
		if err != nil {
			return nil, err
		}
		out = append(out, nc)
	}
	return out, nil
}

// nodeClaimForProviderID returns the NodeClaim whose status.providerID is providerID, or nil.
func (o objects) nodeClaimForProviderID(ctx context.Context, providerID string) (*v1alpha1.NodeClaim, error) {
	if o.claims != nil {
		objs, err := o.claims.ByIndex(providerIDIndex, providerID)
		if err != nil {
			return nil, err
		}
		claims, err := claimsOf(objs)
		if err != nil || len(claims) == 0 {
			return nil, err
		}
		return o.written.fresher(claims[0]), nil
	}
	claims, err := o.listNodeClaims(ctx)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(claims, func(nc *v1alpha1.NodeClaim) bool { return nc.Status.ProviderID == providerID })
	if i < 0 {
		return nil, nil
	}
	return claims[i], nil
}
