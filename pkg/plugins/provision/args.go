package provision

import (
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/nodewright/nodewright/pkg/cloud"
	"github.com/nodewright/nodewright/pkg/disruption"
	"github.com/nodewright/nodewright/pkg/lifecycle"
)

// Defaults for Args. The batch window trades launch latency for packing: pods created
// together (a Deployment scaled up) should land on one plan, not one node each.
const (
	DefaultBatchIdleDuration = 1 * time.Second
	DefaultBatchMaxDuration  = 10 * time.Second
)

// DefaultGangLaunchTimeout is Args.GangLaunchTimeout's default: twice the launch timeout, room
// for a gang's claims to be planned again in other pools once or twice, and for GPU nodes,
// whose images are large, to boot.
const DefaultGangLaunchTimeout = 10 * time.Minute

// ReservationGrace is the default of Args.ReservationGrace: how long a pod reserved on a
// NodeClaim waits to fit on the claim's node once it has registered; then the pod is
// released to be planned again.
const ReservationGrace = 2 * time.Minute

// DefaultKubernetesVersion is the control plane version nodes are launched for when the
// args do not say: the version of the scheduler nodewright is built on.
const DefaultKubernetesVersion = "1.37"

// Args are the Provision plugin's arguments, read from the `args` of its entry in the
// profile's pluginConfig:
//
//	pluginConfig:
//	- name: Provision
//	  args:
//	    clusterName: my-cluster
//	    region: us-east-1
//	    clusterEndpoint: https://ABCDEF.gr7.us-east-1.eks.amazonaws.com
//	    clusterCA: LS0tLS1CRUdJTi...
//	    clusterCIDR: 10.100.0.0/16
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
	// ClusterEndpoint is the https URL of the kube-apiserver that new nodes join, e.g. the
	// EKS cluster's endpoint. Required.
	ClusterEndpoint string `json:"clusterEndpoint"`
	// ClusterCA is the cluster's certificate authority as base64-encoded PEM (the
	// certificate-authority-data of a kubeconfig), which new nodes trust the kube-apiserver
	// with. Required.
	ClusterCA string `json:"clusterCA"`
	// ClusterCIDR is the cluster's service CIDR, e.g. 10.100.0.0/16, from which nodes derive
	// the cluster DNS address. Required.
	ClusterCIDR string `json:"clusterCIDR"`
	// KubernetesVersion is the control plane's "1.minor" version, which selects the node
	// images, e.g. "1.37". Defaults to DefaultKubernetesVersion.
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	// InterruptionQueue is the name of the SQS queue EventBridge sends spot interruptions,
	// rebalance recommendations, scheduled changes and state changes to. Empty disables
	// interruption handling.
	InterruptionQueue string `json:"interruptionQueue,omitempty"`
	// BatchIdleDuration is how long a provisioning round waits for more pending pods after the
	// last one arrived before it plans. Defaults to 1s. A burst that arrives fast ends
	// sooner: after ten times the longest gap between its pods, at least 100ms.
	BatchIdleDuration *metav1.Duration `json:"batchIdleDuration,omitempty"`
	// BatchMaxDuration bounds a round's wait however fast pods keep arriving. Defaults to 10s;
	// must not be shorter than BatchIdleDuration.
	BatchMaxDuration *metav1.Duration `json:"batchMaxDuration,omitempty"`
	// ReservationGrace is how long a pod reserved on a NodeClaim may wait to fit on the
	// claim's node once it has registered before it is released as stranded (see
	// PostFilter). Pods with topology spread wait there for their siblings on other new
	// nodes, so it is not short. Defaults to 2m.
	ReservationGrace *metav1.Duration `json:"reservationGrace,omitempty"`
	// LaunchTimeout is how long the launch of a NodeClaim may keep failing, counted from its
	// first failed attempt, before the claim is deleted and its pods are planned again;
	// attempts are retried with backoff in between. Defaults to 5m.
	LaunchTimeout *metav1.Duration `json:"launchTimeout,omitempty"`
	// GangLaunchTimeout bounds how long the nodes of a gang (a PodGroup of gang policy, with
	// the GenericWorkload feature gate) may take to be all initialized, counted from the round
	// that first wrote its NodeClaims; a claim that cannot launch meanwhile is planned again in
	// other pools. A gang not complete by then has every NodeClaim deleted, those launched
	// included, rather than left idle, and is planned again. Defaults to 10m.
	GangLaunchTimeout *metav1.Duration `json:"gangLaunchTimeout,omitempty"`
	// DisruptionInterval is the time between the disruption controller's passes, each of
	// which decides at most one consolidation or drift replacement. Defaults to 10s.
	DisruptionInterval *metav1.Duration `json:"disruptionInterval,omitempty"`
	// DisruptionValidationDelay is how long after deciding a disruption the controller
	// decides it again, on the cluster as it is then, before carrying it out: pods a
	// scale-up is creating show up meanwhile. Defaults to 15s.
	DisruptionValidationDelay *metav1.Duration `json:"disruptionValidationDelay,omitempty"`
}

// argsPath is where the args live in a KubeSchedulerConfiguration, for error messages.
var argsPath = field.NewPath("pluginConfig").Key(Name).Child("args")

var (
	// clusterNamePattern is what EKS accepts as a cluster name.
	clusterNamePattern = regexp.MustCompile(`^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$`)
	// regionPattern matches AWS region codes: us-east-1, eu-central-2, us-gov-west-1.
	regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	// kubernetesVersionPattern matches "1.minor".
	kubernetesVersionPattern = regexp.MustCompile(`^1\.(0|[1-9][0-9]*)$`)
	// queueNamePattern is what SQS accepts as a queue name.
	queueNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}(\.fifo)?$`)
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
	if a.KubernetesVersion == "" {
		a.KubernetesVersion = DefaultKubernetesVersion
	}
	if a.BatchIdleDuration == nil {
		a.BatchIdleDuration = &metav1.Duration{Duration: DefaultBatchIdleDuration}
	}
	if a.BatchMaxDuration == nil {
		a.BatchMaxDuration = &metav1.Duration{Duration: DefaultBatchMaxDuration}
	}
	if a.ReservationGrace == nil {
		a.ReservationGrace = &metav1.Duration{Duration: ReservationGrace}
	}
	if a.LaunchTimeout == nil {
		a.LaunchTimeout = &metav1.Duration{Duration: lifecycle.DefaultLaunchTimeout}
	}
	if a.GangLaunchTimeout == nil {
		a.GangLaunchTimeout = &metav1.Duration{Duration: DefaultGangLaunchTimeout}
	}
	if a.DisruptionInterval == nil {
		a.DisruptionInterval = &metav1.Duration{Duration: disruption.DefaultInterval}
	}
	if a.DisruptionValidationDelay == nil {
		a.DisruptionValidationDelay = &metav1.Duration{Duration: disruption.DefaultValidationDelay}
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
	errs = append(errs, a.validateCluster()...)
	if a.InterruptionQueue != "" && !queueNamePattern.MatchString(a.InterruptionQueue) {
		errs = append(errs, field.Invalid(argsPath.Child("interruptionQueue"), a.InterruptionQueue,
			"must be an SQS queue name: 1-80 letters, digits, '-' or '_'"))
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
	if grace := a.ReservationGrace.Duration; grace <= 0 {
		errs = append(errs, field.Invalid(argsPath.Child("reservationGrace"), grace.String(), "must be positive"))
	}
	if d := a.LaunchTimeout.Duration; d <= 0 {
		errs = append(errs, field.Invalid(argsPath.Child("launchTimeout"), d.String(), "must be positive"))
	}
	if d := a.GangLaunchTimeout.Duration; d <= 0 {
		errs = append(errs, field.Invalid(argsPath.Child("gangLaunchTimeout"), d.String(), "must be positive"))
	}
	if d := a.DisruptionInterval.Duration; d <= 0 {
		errs = append(errs, field.Invalid(argsPath.Child("disruptionInterval"), d.String(), "must be positive"))
	}
	if d := a.DisruptionValidationDelay.Duration; d <= 0 {
		errs = append(errs, field.Invalid(argsPath.Child("disruptionValidationDelay"), d.String(), "must be positive"))
	}
	return errs
}

// validateCluster checks what new nodes need to join the cluster.
func (a *Args) validateCluster() field.ErrorList {
	var errs field.ErrorList
	switch u, err := url.Parse(a.ClusterEndpoint); {
	case a.ClusterEndpoint == "":
		errs = append(errs, field.Required(argsPath.Child("clusterEndpoint"), "the https URL of the kube-apiserver nodes join"))
	case err != nil || u.Scheme != "https" || u.Host == "":
		errs = append(errs, field.Invalid(argsPath.Child("clusterEndpoint"), a.ClusterEndpoint, "must be an absolute https URL"))
	}
	if a.ClusterCA == "" {
		errs = append(errs, field.Required(argsPath.Child("clusterCA"), "the cluster's certificate authority, base64-encoded PEM"))
	} else if pemBytes, err := base64.StdEncoding.DecodeString(a.ClusterCA); err != nil {
		errs = append(errs, field.Invalid(argsPath.Child("clusterCA"), "<redacted>", "must be base64: "+err.Error()))
	} else if block, _ := pem.Decode(pemBytes); block == nil || block.Type != "CERTIFICATE" {
		errs = append(errs, field.Invalid(argsPath.Child("clusterCA"), "<redacted>", "must be the base64 encoding of a PEM CERTIFICATE block"))
	}
	if a.ClusterCIDR == "" {
		errs = append(errs, field.Required(argsPath.Child("clusterCIDR"), "the cluster's service CIDR, e.g. 10.100.0.0/16"))
	} else if _, err := netip.ParsePrefix(a.ClusterCIDR); err != nil {
		errs = append(errs, field.Invalid(argsPath.Child("clusterCIDR"), a.ClusterCIDR, "must be a CIDR such as 10.100.0.0/16"))
	}
	if !kubernetesVersionPattern.MatchString(a.KubernetesVersion) {
		errs = append(errs, field.Invalid(argsPath.Child("kubernetesVersion"), a.KubernetesVersion, `must be "1.minor", e.g. "1.37"`))
	}
	return errs
}

// cloudConfig is the cloud's part of the args.
func (a *Args) cloudConfig() cloud.Config {
	return cloud.Config{
		ClusterName:       a.ClusterName,
		Region:            a.Region,
		Endpoint:          a.Endpoint,
		ClusterEndpoint:   a.ClusterEndpoint,
		ClusterCA:         a.ClusterCA,
		ClusterCIDR:       a.ClusterCIDR,
		KubernetesVersion: a.KubernetesVersion,
		InterruptionQueue: a.InterruptionQueue,
	}
}
