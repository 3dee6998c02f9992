package provision

import (
	"fmt"
	"net/url"
	"regexp"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"
)

// Defaults for Args. The batch window trades launch latency for packing: pods created
// together (a Deployment scaled up) should land on one plan, not one node each.
const (
	DefaultBatchIdleDuration = 1 * time.Second
	DefaultBatchMaxDuration  = 10 * time.Second
)

// Args are the Provision plugin's arguments, read from the `args` of its entry in the
// profile's pluginConfig:
//
//	pluginConfig:
//	- name: Provision
//	  args:
//	    clusterName: my-cluster
//	    region: us-east-1
type Args struct {
	// ClusterName names the cluster the nodes join. It is written into the
	// nodewright.dev/cluster tag of every instance, which garbage collection uses to find the
	// instances this scheduler owns, so two clusters in one account must not share it.
	// Required.
	ClusterName string `json:"clusterName"`
	// Region is the AWS region nodes are launched in, e.g. us-east-1. Required: a scheduler
	// must never guess where to spend money.
	Region string `json:"region"`
	// Endpoint, when set, overrides the AWS API endpoint for every service, e.g. the EC2
	// emulator of the local sandbox (http://127.0.0.1:4566). Empty means the real AWS
	// endpoints of Region.
	Endpoint string `json:"endpoint,omitempty"`
	// BatchIdleDuration is how long a provisioning round waits for more pending pods after the
	// last one arrived before it plans. Defaults to 1s.
	BatchIdleDuration *metav1.Duration `json:"batchIdleDuration,omitempty"`
	// BatchMaxDuration bounds a round's wait however fast pods keep arriving. Defaults to 10s;
	// must not be shorter than BatchIdleDuration.
	BatchMaxDuration *metav1.Duration `json:"batchMaxDuration,omitempty"`
}

// argsPath is where the args live in a KubeSchedulerConfiguration, for error messages.
var argsPath = field.NewPath("pluginConfig").Key(Name).Child("args")

var (
	// clusterNamePattern is what EKS accepts as a cluster name.
	clusterNamePattern = regexp.MustCompile(`^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$`)
	// regionPattern matches AWS region codes: us-east-1, eu-central-2, us-gov-west-1.
	regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// decodeArgs reads the plugin's args strictly: a misspelt field is an error, not a silently
// ignored setting. obj is nil when the configuration has no args for the plugin.
func decodeArgs(obj runtime.Object) (*Args, error) {
	args := &Args{}
	switch o := obj.(type) {
	case nil:
	case *runtime.Unknown:
		if len(o.Raw) == 0 {
			break
		}
		var strictErrs []error
		var err error
		switch o.ContentType {
		case runtime.ContentTypeJSON, "":
			strictErrs, err = sigsjson.UnmarshalStrict(o.Raw, args)
		case runtime.ContentTypeYAML:
			err = sigsyaml.UnmarshalStrict(o.Raw, args)
		default:
			err = fmt.Errorf("unsupported content type %q", o.ContentType)
		}
		if err == nil && len(strictErrs) > 0 {
			err = strictErrs[0]
		}
		if err != nil {
			return nil, field.Invalid(argsPath, string(o.Raw), err.Error())
		}
	default:
		return nil, field.TypeInvalid(argsPath, fmt.Sprintf("%T", obj), "want runtime.Unknown")
	}
	return args, nil
}

// SetDefaults fills the fields a user may leave out.
func (a *Args) SetDefaults() {
	if a.BatchIdleDuration == nil {
		a.BatchIdleDuration = &metav1.Duration{Duration: DefaultBatchIdleDuration}
	}
	if a.BatchMaxDuration == nil {
		a.BatchMaxDuration = &metav1.Duration{Duration: DefaultBatchMaxDuration}
	}
}

// Validate checks defaulted args and returns every problem, each with its field path.
func (a *Args) Validate() field.ErrorList {
	var errs field.ErrorList
	switch {
	case a.ClusterName == "":
		errs = append(errs, field.Required(argsPath.Child("clusterName"), "the name of the cluster the nodes join"))
	case !clusterNamePattern.MatchString(a.ClusterName):
		errs = append(errs, field.Invalid(argsPath.Child("clusterName"), a.ClusterName,
			"must be 1-100 letters, digits, '-' or '_', starting with a letter or digit"))
	}
	switch {
	case a.Region == "":
		errs = append(errs, field.Required(argsPath.Child("region"), "the AWS region to launch nodes in, e.g. us-east-1"))
	case !regionPattern.MatchString(a.Region):
		errs = append(errs, field.Invalid(argsPath.Child("region"), a.Region, "must be an AWS region code such as us-east-1"))
	}
	if a.Endpoint != "" {
		if u, err := url.Parse(a.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, field.Invalid(argsPath.Child("endpoint"), a.Endpoint, "must be an absolute http or https URL"))
		}
	}
	idle, maxWait := a.BatchIdleDuration.Duration, a.BatchMaxDuration.Duration
	if idle <= 0 {
		errs = append(errs, field.Invalid(argsPath.Child("batchIdleDuration"), idle.String(), "must be positive"))
	}
	if maxWait <= 0 {
		errs = append(errs, field.Invalid(argsPath.Child("batchMaxDuration"), maxWait.String(), "must be positive"))
	} else if maxWait < idle {
		errs = append(errs, field.Invalid(argsPath.Child("batchMaxDuration"), maxWait.String(),
			fmt.Sprintf("must not be shorter than batchIdleDuration (%s)", idle)))
	}
	return errs
}
