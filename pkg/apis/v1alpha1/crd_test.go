package v1alpha1_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/nodewright/nodewright/manifests"
	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// TestCRDsAreValid runs the apiserver's own validation of CustomResourceDefinitions over the
// generated CRDs, so a schema that is not structural or a CEL rule over the cost budget fails
// here, not only when the CRD is installed.
func TestCRDsAreValid(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := apiextensions.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, data := range manifests.CRDs() {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(data, &crd); err != nil {
			t.Fatalf("decoding a CRD: %v", err)
		}
		kinds = append(kinds, crd.Spec.Names.Kind)
		t.Run(crd.Spec.Names.Kind, func(t *testing.T) {
			scheme.Default(&crd)
			var internal apiextensions.CustomResourceDefinition
			if err := scheme.Convert(&crd, &internal, nil); err != nil {
				t.Fatalf("converting: %v", err)
			}
			if errs := validation.ValidateCustomResourceDefinition(context.Background(), &internal); len(errs) > 0 {
				for _, err := range errs {
					t.Error(err)
				}
			}
			if crd.Spec.Group != v1alpha1.GroupName || crd.Spec.Scope != apiextensionsv1.ClusterScoped {
				t.Errorf("group %s, scope %s; want %s, Cluster", crd.Spec.Group, crd.Spec.Scope, v1alpha1.GroupName)
			}
		})
	}
	// One CRD per kind of the API, and no other.
	want := []string{"EC2NodeClass", "NodeClaim", "Provisioner"}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("CRD kinds (-want, +got):\n%s", diff)
	}
}
