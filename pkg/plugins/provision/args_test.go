package provision

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/kubernetes/test/utils/ktesting"
)

func unknown(raw string) runtime.Object {
	return &runtime.Unknown{Raw: []byte(raw), ContentType: runtime.ContentTypeJSON}
}

func TestNewArgs(t *testing.T) {
	tests := []struct {
		name string
		obj  runtime.Object
		want *Args
		// wantErrs are substrings the error must contain, each naming a field.
		wantErrs []string
	}{
		{
			name: "minimal args get the default batch window",
			obj:  unknown(`{"clusterName":"prod","region":"us-east-1"}`),
			want: &Args{
				ClusterName:       "prod",
				Region:            "us-east-1",
				BatchIdleDuration: &metav1.Duration{Duration: time.Second},
				BatchMaxDuration:  &metav1.Duration{Duration: 10 * time.Second},
			},
		},
		{
			name: "every field set",
			obj: unknown(`{"clusterName":"prod_2","region":"us-gov-west-1","endpoint":"http://127.0.0.1:4566",
				"batchIdleDuration":"500ms","batchMaxDuration":"2s"}`),
			want: &Args{
				ClusterName:       "prod_2",
				Region:            "us-gov-west-1",
				Endpoint:          "http://127.0.0.1:4566",
				BatchIdleDuration: &metav1.Duration{Duration: 500 * time.Millisecond},
				BatchMaxDuration:  &metav1.Duration{Duration: 2 * time.Second},
			},
		},
		{
			name: "yaml content",
			obj:  &runtime.Unknown{Raw: []byte("clusterName: prod\nregion: eu-west-1\n"), ContentType: runtime.ContentTypeYAML},
			want: &Args{
				ClusterName:       "prod",
				Region:            "eu-west-1",
				BatchIdleDuration: &metav1.Duration{Duration: time.Second},
				BatchMaxDuration:  &metav1.Duration{Duration: 10 * time.Second},
			},
		},
		{
			name:     "no args at all: the required fields are named",
			obj:      nil,
			wantErrs: []string{"pluginConfig[Provision].args.clusterName: Required value", "pluginConfig[Provision].args.region: Required value"},
		},
		{
			name:     "misspelt field is rejected, not ignored",
			obj:      unknown(`{"clusterName":"prod","region":"us-east-1","batchIdle":"1s"}`),
			wantErrs: []string{"pluginConfig[Provision].args", `unknown field "batchIdle"`},
		},
		{
			name:     "bad cluster name",
			obj:      unknown(`{"clusterName":"-prod","region":"us-east-1"}`),
			wantErrs: []string{`pluginConfig[Provision].args.clusterName: Invalid value: "-prod"`},
		},
		{
			name:     "bad region",
			obj:      unknown(`{"clusterName":"prod","region":"US East"}`),
			wantErrs: []string{`pluginConfig[Provision].args.region: Invalid value: "US East"`},
		},
		{
			name:     "endpoint without scheme",
			obj:      unknown(`{"clusterName":"prod","region":"us-east-1","endpoint":"127.0.0.1:4566"}`),
			wantErrs: []string{`pluginConfig[Provision].args.endpoint: Invalid value: "127.0.0.1:4566"`},
		},
		{
			name:     "zero idle duration",
			obj:      unknown(`{"clusterName":"prod","region":"us-east-1","batchIdleDuration":"0s"}`),
			wantErrs: []string{"pluginConfig[Provision].args.batchIdleDuration: Invalid value: \"0s\": must be positive"},
		},
		{
			name: "max shorter than idle",
			obj:  unknown(`{"clusterName":"prod","region":"us-east-1","batchIdleDuration":"5s","batchMaxDuration":"2s"}`),
			// 2s < 5s: the round would stop waiting before the idle window could ever close.
			wantErrs: []string{"pluginConfig[Provision].args.batchMaxDuration: Invalid value: \"2s\": must not be shorter than batchIdleDuration (5s)"},
		},
		{
			name:     "negative max duration",
			obj:      unknown(`{"clusterName":"prod","region":"us-east-1","batchMaxDuration":"-1s"}`),
			wantErrs: []string{"pluginConfig[Provision].args.batchMaxDuration: Invalid value: \"-1s\": must be positive"},
		},
		{
			name:     "wrong type",
			obj:      unknown(`{"clusterName":7,"region":"us-east-1"}`),
			wantErrs: []string{"pluginConfig[Provision].args"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			p, err := New(ctx, tt.obj, nil)
			if len(tt.wantErrs) > 0 {
				if err == nil {
					t.Fatalf("New() succeeded, want an error containing %q", tt.wantErrs)
				}
				for _, want := range tt.wantErrs {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("New() error = %q, want it to contain %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("New() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, p.(*Provision).args); diff != "" {
				t.Errorf("args (-want, +got):\n%s", diff)
			}
		})
	}
}
