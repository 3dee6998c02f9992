package lifecycle

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// reportingController names the lifecycle in the events it records.
const reportingController = "nodewright.dev/lifecycle"

// Event reasons, on NodeClaims and Nodes. Actions are the verbs below.
const (
	eventLaunched             = "Launched"
	eventLaunchFailed         = "LaunchFailed"
	eventInsufficientCapacity = "InsufficientCapacity"
	eventLaunchTimeout        = "LaunchTimeout"
	eventRegistered           = "Registered"
	eventInitialized          = "Initialized"
	eventRegistrationTimeout  = "RegistrationTimeout"
	eventEmpty                = "Empty"
	eventEmptyTTLExpired      = "EmptyTTLExpired"
	eventExpired              = "Expired"
	eventCordoned             = "Cordoned"
	eventEvicted              = "Evicted"
	eventEvictionBlocked      = "EvictionBlocked"
	eventTerminated           = "Terminated"
	eventInstanceGone         = "InstanceGone"
	eventInterrupted          = "Interrupted"
	eventProvisionerDeleted   = "ProvisionerDeleted"
	eventRebalance            = "RebalanceRecommended"

	actionLaunch    = "Launch"
	actionRegister  = "Register"
	actionDelete    = "Delete"
	actionCordon    = "Cordon"
	actionEvict     = "Evict"
	actionTerminate = "Terminate"
	actionObserve   = "Observe"
)

// newScheme returns a scheme that knows core types and nodewright's, so the event recorder
// can reference NodeClaims.
func newScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return scheme, nil
}
