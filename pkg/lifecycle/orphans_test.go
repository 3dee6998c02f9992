package lifecycle

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/cache"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

func TestOrphans(t *testing.T) {
	of := func(p string) func(*v1alpha1.NodeClaim) {
		return func(nc *v1alpha1.NodeClaim) { nc.Spec.Provisioner = p }
	}
	tests := []struct {
		name         string
		provisioners []string
		// staleCache is a provisioners cache that has not seen them yet.
		staleCache  bool
		wantClaims  []string
		wantDeleted []string
	}{{
		name:         "the provisioner exists: its claims stay",
		provisioners: []string{"default", "other"},
		wantClaims:   []string{"launched", "launching", "other"},
	}, {
		name:         "the provisioner is gone: its claims go, launched or not",
		provisioners: []string{"other"},
		wantClaims:   []string{"other"},
		wantDeleted:  []string{"launched", "launching"},
	}, {
		name:         "a provisioner the cache has not seen yet is asked of the API",
		provisioners: []string{"default", "other"},
		staleCache:   true,
		wantClaims:   []string{"launched", "launching", "other"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.add(t, claim("launched", launched("aws:///us-east-1a/i-00000000000000001"), initialized), claim("launching"), claim("other", of("other")))
			for _, p := range tc.provisioners {
				e.add(t, provisioner(p))
			}
			if tc.staleCache {
				e.deps.objects.provisioners = cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
			}
			o := &orphans{deps: e.deps}
			if _, err := o.reconcile(e.ctx, "default"); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, name := range []string{"launched", "launching", "other"} {
				if e.getClaim(t, name) != nil {
					got = append(got, name)
				}
			}
			if diff := cmp.Diff(tc.wantClaims, got); diff != "" {
				t.Errorf("claims left (-want, +got):\n%s", diff)
			}
			if n := len(drainEvents(e)); n != len(tc.wantDeleted) {
				t.Errorf("%d events, want one per deleted claim (%v)", n, tc.wantDeleted)
			}
		})
	}
}
