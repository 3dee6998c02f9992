package plan

import (
	v1 "k8s.io/api/core/v1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/plan/plantest"
)

// planInput plans pods for provs, each offering plantest.Catalog, in us-east-1.
func planInput(pods []*v1.Pod, provs ...*v1alpha1.Provisioner) Input {
	return Input{Pods: pods, Provisioners: provs, InstanceTypes: plantest.Catalogs(provs...), Region: "us-east-1"}
}
