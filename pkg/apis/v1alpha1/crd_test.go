package v1alpha1_test

import (
	"context"
	"maps"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
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

// TestRequirementOperatorRules evaluates the Provisioner CRD's CEL rules as the apiserver does
// on a requirement over each well-known label and over a label of the user's: Exists passes on
// every key, Gt and Lt on v1alpha1.IntegerLabels and the user's only, and on the others the
// error names the requirement's operator. It is how the rule's list of keys is kept to the Go
// sets.
func TestRequirementOperatorRules(t *testing.T) {
	validate := celValidator(t, "Provisioner")
	keys := append(sets.List(v1alpha1.WellKnownLabels), "example.com/rank")
	for _, key := range keys {
		for _, op := range []string{"Exists", "Gt", "Lt"} {
			t.Run(key+" "+op, func(t *testing.T) {
				req := map[string]any{"key": key, "operator": op}
				if op != "Exists" {
					req["values"] = []any{"4"}
				}
				obj := map[string]any{
					"apiVersion": "nodewright.dev/v1alpha1", "kind": "Provisioner", "metadata": map[string]any{"name": "default"},
					"spec": map[string]any{"nodeClassRef": map[string]any{"name": "default"}, "requirements": []any{req}},
				}
				var got []string
				for _, err := range validate(obj) {
					got = append(got, err.Type.String()+" "+err.Field)
				}
				var want []string
				if op != "Exists" && v1alpha1.WellKnownLabels.Has(key) && !v1alpha1.IntegerLabels.Has(key) {
					want = []string{"Invalid value spec.requirements[0].operator"}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("CEL errors (-want, +got):\n%s", diff)
				}
			})
		}
	}
}

// celValidator returns a function that runs the CEL rules of the CRD of kind on an object,
// with the apiserver's cost limits.
func celValidator(t *testing.T, kind string) func(obj map[string]any) field.ErrorList {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := apiextensions.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	for _, data := range manifests.CRDs() {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(data, &crd); err != nil {
			t.Fatalf("decoding a CRD: %v", err)
		}
		if crd.Spec.Names.Kind != kind {
			continue
		}
		if len(crd.Spec.Versions) != 1 {
			t.Fatalf("%s: %d versions, want 1", kind, len(crd.Spec.Versions))
		}
		var props apiextensions.JSONSchemaProps
		if err := scheme.Convert(crd.Spec.Versions[0].Schema.OpenAPIV3Schema, &props, nil); err != nil {
			t.Fatalf("converting the schema of %s: %v", kind, err)
		}
		s, err := schema.NewStructural(&props)
		if err != nil {
			t.Fatalf("the schema of %s is not structural: %v", kind, err)
		}
		v := cel.NewValidator(s, true, celconfig.PerCallLimit)
		return func(obj map[string]any) field.ErrorList {
			errs, _ := v.Validate(context.Background(), nil, s, obj, nil, celconfig.RuntimeCELCostBudget)
			return errs
		}
	}
	t.Fatalf("no CRD of kind %s", kind)
	return nil
}

// TestDisruptionRules runs the Provisioner CRD's CEL rules on disruption settings: the seed's
// TTLs and spec.disruption are one or the other, and a budget's schedule needs its duration;
// each error names the field to change.
func TestDisruptionRules(t *testing.T) {
	validate := celValidator(t, "Provisioner")
	for _, tc := range []struct {
		name string
		spec map[string]any
		want []string
	}{
		{name: "the seed's TTLs alone", spec: map[string]any{"ttlSecondsAfterEmpty": int64(30), "ttlSecondsUntilExpired": int64(86400)}},
		{name: "disruption alone", spec: map[string]any{"disruption": map[string]any{
			"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "30s", "expireAfter": "720h",
			"budgets": []any{map[string]any{"nodes": "10%"}, map[string]any{"nodes": "0", "schedule": "0 9 * * 1-5", "duration": "8h", "reasons": []any{"Underutilized"}}}}}},
		{name: "disruption and ttlSecondsAfterEmpty", spec: map[string]any{"ttlSecondsAfterEmpty": int64(30), "disruption": map[string]any{}},
			want: []string{"Forbidden spec.ttlSecondsAfterEmpty"}},
		{name: "disruption and ttlSecondsUntilExpired", spec: map[string]any{"ttlSecondsUntilExpired": int64(30), "disruption": map[string]any{}},
			want: []string{"Forbidden spec.ttlSecondsUntilExpired"}},
		{name: "a schedule without its duration", spec: map[string]any{"disruption": map[string]any{
			"budgets": []any{map[string]any{"nodes": "0", "schedule": "@daily"}}}},
			want: []string{"Invalid value spec.disruption.budgets[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := map[string]any{"nodeClassRef": map[string]any{"name": "default"}}
			maps.Copy(spec, tc.spec)
			obj := map[string]any{"apiVersion": "nodewright.dev/v1alpha1", "kind": "Provisioner",
				"metadata": map[string]any{"name": "default"}, "spec": spec}
			var got []string
			for _, err := range validate(obj) {
				got = append(got, err.Type.String()+" "+err.Field)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("CEL errors (-want, +got):\n%s", diff)
			}
		})
	}
}
