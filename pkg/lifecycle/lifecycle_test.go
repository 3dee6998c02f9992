package lifecycle

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"

	cloudfake "github.com/nodewright/nodewright/pkg/cloud/fake"
)

func TestNewValidates(t *testing.T) {
	valid := func() Options {
		return Options{
			Client:  kubefake.NewClientset(),
			Dynamic: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds),
			Cloud:   &cloudfake.Provider{},
		}
	}
	tests := []struct {
		name       string
		change     func(*Options)
		wantFields []string // field paths the error must name; none means valid
	}{{
		name:   "defaults are valid",
		change: func(*Options) {},
	}, {
		name:       "clients and cloud are required",
		change:     func(o *Options) { o.Client, o.Dynamic, o.Cloud = nil, nil, nil },
		wantFields: []string{"client", "dynamic", "cloud"},
	}, {
		name:       "negative durations",
		change:     func(o *Options) { o.RegistrationTimeout, o.GCGracePeriod = -time.Second, -time.Second },
		wantFields: []string{"registrationTimeout", "gcGracePeriod"},
	}, {
		name: "lease shorter than its renew deadline",
		change: func(o *Options) {
			o.LeaderElection.LeaseDuration, o.LeaderElection.RenewDeadline = 5*time.Second, 10*time.Second
		},
		wantFields: []string{"leaderElection.leaseDuration"},
	}, {
		name: "no lease checks when leader election is disabled",
		change: func(o *Options) {
			o.LeaderElection.Disabled = true
			o.LeaderElection.LeaseDuration, o.LeaderElection.RenewDeadline = 5*time.Second, 10*time.Second
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := valid()
			tc.change(&opts)
			m, err := New(opts)
			if len(tc.wantFields) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded, want an error naming %v", tc.wantFields)
			}
			for _, f := range tc.wantFields {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q does not name %s", err, f)
				}
			}
			_ = m
		})
	}
}

func TestDefaults(t *testing.T) {
	o := Options{LeaderElection: LeaderElectionOptions{Identity: "me"}}.withDefaults()
	got := []any{o.RegistrationTimeout, o.GCGracePeriod, o.LeaderElection.LeaseName, o.LeaderElection.LeaseNamespace, o.Workers}
	want := []any{15 * time.Minute, 2 * time.Minute, "nodewright-lifecycle", "kube-system", 16}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want, +got):\n%s", diff)
	}
}
