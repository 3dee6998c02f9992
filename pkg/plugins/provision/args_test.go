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

// testCA is the base64 of a PEM CERTIFICATE block (whose body is not a real certificate:
// validation checks the encoding, not the certificate).
const testCA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClVrVlFURUZEUlMxTlJRPT0KLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="

// withCluster adds valid clusterEndpoint, clusterCA and clusterCIDR to the JSON object raw,
// which must end with '}'.
func withCluster(raw string) runtime.Object {
	return unknown(strings.TrimSuffix(raw, "}") +
		`,"clusterEndpoint":"https://k.example.com","clusterCA":"` + testCA + `","clusterCIDR":"10.100.0.0/16"}`)
}

// argsCase is a case of TestNewArgs.
type argsCase struct {
	name string
	obj  runtime.Object
	want *Args
	// wantErrs are substrings the error must contain, each naming a field.
	wantErrs []string
}

// argsCases are the cases of TestNewArgs.
var argsCases = []argsCase{
	{
		name: "minimal args get the default batch window",
		obj:  withCluster(`{"clusterName":"prod","region":"us-east-1"}`),
		want: &Args{
			ClusterName:               "prod",
			Region:                    "us-east-1",
			ClusterEndpoint:           "https://k.example.com",
			ClusterCA:                 testCA,
			ClusterCIDR:               "10.100.0.0/16",
			KubernetesVersion:         "1.37",
			BatchIdleDuration:         &metav1.Duration{Duration: time.Second},
			BatchMaxDuration:          &metav1.Duration{Duration: 10 * time.Second},
			ReservationGrace:          &metav1.Duration{Duration: ReservationGrace},
			LaunchTimeout:             &metav1.Duration{Duration: 5 * time.Minute},
			GangLaunchTimeout:         &metav1.Duration{Duration: DefaultGangLaunchTimeout},
			DisruptionInterval:        &metav1.Duration{Duration: 10 * time.Second},
			DisruptionValidationDelay: &metav1.Duration{Duration: 15 * time.Second},
		},
	},
	{
		name: "every field set",
		obj: unknown(`{"clusterName":"prod_2","region":"us-gov-west-1","endpoint":"http://127.0.0.1:4566",
			"clusterEndpoint":"https://10.0.0.1:6443","clusterCA":"` + testCA + `","clusterCIDR":"fd00::/108",
			"kubernetesVersion":"1.36","interruptionQueue":"prod-interruptions",
			"batchIdleDuration":"500ms","batchMaxDuration":"2s","launchTimeout":"30s","gangLaunchTimeout":"3m",
			"disruptionInterval":"1s","disruptionValidationDelay":"2s"}`),
		want: &Args{
			ClusterName:               "prod_2",
			Region:                    "us-gov-west-1",
			Endpoint:                  "http://127.0.0.1:4566",
			ClusterEndpoint:           "https://10.0.0.1:6443",
			ClusterCA:                 testCA,
			ClusterCIDR:               "fd00::/108",
			KubernetesVersion:         "1.36",
			InterruptionQueue:         "prod-interruptions",
			BatchIdleDuration:         &metav1.Duration{Duration: 500 * time.Millisecond},
			BatchMaxDuration:          &metav1.Duration{Duration: 2 * time.Second},
			ReservationGrace:          &metav1.Duration{Duration: ReservationGrace},
			LaunchTimeout:             &metav1.Duration{Duration: 30 * time.Second},
			GangLaunchTimeout:         &metav1.Duration{Duration: 3 * time.Minute},
			DisruptionInterval:        &metav1.Duration{Duration: time.Second},
			DisruptionValidationDelay: &metav1.Duration{Duration: 2 * time.Second},
		},
	},
	{
		name: "yaml content",
		obj: &runtime.Unknown{Raw: []byte("clusterName: prod\nregion: eu-west-1\nclusterEndpoint: https://k.example.com\n" +
			"clusterCA: " + testCA + "\nclusterCIDR: 10.100.0.0/16\n"), ContentType: runtime.ContentTypeYAML},
		want: &Args{
			ClusterName:               "prod",
			Region:                    "eu-west-1",
			ClusterEndpoint:           "https://k.example.com",
			ClusterCA:                 testCA,
			ClusterCIDR:               "10.100.0.0/16",
			KubernetesVersion:         "1.37",
			BatchIdleDuration:         &metav1.Duration{Duration: time.Second},
			BatchMaxDuration:          &metav1.Duration{Duration: 10 * time.Second},
			ReservationGrace:          &metav1.Duration{Duration: ReservationGrace},
			LaunchTimeout:             &metav1.Duration{Duration: 5 * time.Minute},
			GangLaunchTimeout:         &metav1.Duration{Duration: DefaultGangLaunchTimeout},
			DisruptionInterval:        &metav1.Duration{Duration: 10 * time.Second},
			DisruptionValidationDelay: &metav1.Duration{Duration: 15 * time.Second},
		},
	},
	{
		name: "no args at all: the required fields are named",
		obj:  nil,
		wantErrs: []string{"pluginConfig[Provision].args.clusterName: Required value", "pluginConfig[Provision].args.region: Required value",
			"pluginConfig[Provision].args.clusterEndpoint: Required value", "pluginConfig[Provision].args.clusterCA: Required value",
			"pluginConfig[Provision].args.clusterCIDR: Required value"},
	},
	{
		name:     "misspelt field is rejected, not ignored",
		obj:      withCluster(`{"clusterName":"prod","region":"us-east-1","batchIdle":"1s"}`),
		wantErrs: []string{"pluginConfig[Provision].args", `unknown field "batchIdle"`},
	},
	{
		name:     "bad cluster name",
		obj:      withCluster(`{"clusterName":"-prod","region":"us-east-1"}`),
		wantErrs: []string{`pluginConfig[Provision].args.clusterName: Invalid value: "-prod"`},
	},
	{
		name:     "bad region",
		obj:      withCluster(`{"clusterName":"prod","region":"US East"}`),
		wantErrs: []string{`pluginConfig[Provision].args.region: Invalid value: "US East"`},
	},
	{
		name:     "endpoint without scheme",
		obj:      withCluster(`{"clusterName":"prod","region":"us-east-1","endpoint":"127.0.0.1:4566"}`),
		wantErrs: []string{`pluginConfig[Provision].args.endpoint: Invalid value: "127.0.0.1:4566"`},
	},
	{
		name:     "zero idle duration",
		obj:      withCluster(`{"clusterName":"prod","region":"us-east-1","batchIdleDuration":"0s"}`),
		wantErrs: []string{"pluginConfig[Provision].args.batchIdleDuration: Invalid value: \"0s\": must be positive"},
	},
	{
		name: "max shorter than idle",
		obj:  withCluster(`{"clusterName":"prod","region":"us-east-1","batchIdleDuration":"5s","batchMaxDuration":"2s"}`),
		// 2s < 5s: the round would stop waiting before the idle window could ever close.
		wantErrs: []string{"pluginConfig[Provision].args.batchMaxDuration: Invalid value: \"2s\": must not be shorter than batchIdleDuration (5s)"},
	},
	{
		name:     "negative max duration",
		obj:      withCluster(`{"clusterName":"prod","region":"us-east-1","batchMaxDuration":"-1s"}`),
		wantErrs: []string{"pluginConfig[Provision].args.batchMaxDuration: Invalid value: \"-1s\": must be positive"},
	},
	{
		name:     "zero launch timeout",
		obj:      withCluster(`{"clusterName":"prod","region":"us-east-1","launchTimeout":"0s"}`),
		wantErrs: []string{"pluginConfig[Provision].args.launchTimeout: Invalid value: \"0s\": must be positive"},
	},
	{
		name:     "negative gang launch timeout",
		obj:      withCluster(`{"clusterName":"prod","region":"us-east-1","gangLaunchTimeout":"-1m"}`),
		wantErrs: []string{"pluginConfig[Provision].args.gangLaunchTimeout: Invalid value: \"-1m0s\": must be positive"},
	},
	{
		name:     "plain http cluster endpoint",
		obj:      unknown(`{"clusterName":"prod","region":"us-east-1","clusterEndpoint":"http://k.example.com","clusterCA":"` + testCA + `","clusterCIDR":"10.100.0.0/16"}`),
		wantErrs: []string{`pluginConfig[Provision].args.clusterEndpoint: Invalid value: "http://k.example.com": must be an absolute https URL`},
	},
	{
		name:     "cluster CA not base64",
		obj:      unknown(`{"clusterName":"prod","region":"us-east-1","clusterEndpoint":"https://k","clusterCA":"not base64!","clusterCIDR":"10.100.0.0/16"}`),
		wantErrs: []string{`pluginConfig[Provision].args.clusterCA: Invalid value: "<redacted>": must be base64`},
	},
	{
		name: "cluster CA base64 but not PEM",
		// "Y2E=" is base64 of "ca".
		obj:      unknown(`{"clusterName":"prod","region":"us-east-1","clusterEndpoint":"https://k","clusterCA":"Y2E=","clusterCIDR":"10.100.0.0/16"}`),
		wantErrs: []string{`pluginConfig[Provision].args.clusterCA: Invalid value: "<redacted>": must be the base64 encoding of a PEM CERTIFICATE block`},
	},
	{
		name:     "cluster CIDR without prefix length",
		obj:      unknown(`{"clusterName":"prod","region":"us-east-1","clusterEndpoint":"https://k","clusterCA":"` + testCA + `","clusterCIDR":"10.100.0.0"}`),
		wantErrs: []string{`pluginConfig[Provision].args.clusterCIDR: Invalid value: "10.100.0.0"`},
	},
	{
		name:     "kubernetes version with a patch",
		obj:      withCluster(`{"clusterName":"prod","region":"us-east-1","kubernetesVersion":"1.37.2"}`),
		wantErrs: []string{`pluginConfig[Provision].args.kubernetesVersion: Invalid value: "1.37.2": must be "1.minor"`},
	},
	{
		name:     "interruption queue given as a URL",
		obj:      withCluster(`{"clusterName":"prod","region":"us-east-1","interruptionQueue":"https://sqs.us-east-1.amazonaws.com/1/q"}`),
		wantErrs: []string{`pluginConfig[Provision].args.interruptionQueue: Invalid value: "https://sqs.us-east-1.amazonaws.com/1/q"`},
	},
	{
		name:     "wrong type",
		obj:      withCluster(`{"clusterName":7,"region":"us-east-1"}`),
		wantErrs: []string{"pluginConfig[Provision].args"},
	},
}

func TestNewArgs(t *testing.T) {
	tests := argsCases
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
