package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/kubernetes/test/utils/ktesting"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/nodewright/nodewright/manifests"
	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/sandbox"
	"github.com/nodewright/nodewright/test/integration/framework"
)

// TestAPIExamplesApply creates every object of manifests/examples (with strict field
// validation, so a field the CRD does not know fails too), and checks the defaults the CRDs
// fill in.
func TestAPIExamplesApply(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	files, err := filepath.Glob(filepath.Join(framework.RepoRoot(t), "manifests", "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no examples in manifests/examples")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, created := range createObjects(ctx, t, decodeManifests(t, data)) {
				t.Logf("created %s %s", created.GetKind(), created.GetName())
			}
		})
	}

	// The seed's objects, as the apiserver defaulted them.
	data, err := os.ReadFile(filepath.Join(framework.RepoRoot(t), "manifests", "examples", "default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var provisioner v1alpha1.Provisioner
	var nodeClass v1alpha1.EC2NodeClass
	for _, created := range createObjects(ctx, t, decodeManifests(t, data)) {
		var into any = &provisioner
		if created.GetKind() == "EC2NodeClass" {
			into = &nodeClass
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(created.Object, into); err != nil {
			t.Fatal(err)
		}
	}
	wantRef := v1alpha1.NodeClassReference{Group: "nodewright.dev", Kind: "EC2NodeClass", Name: "default"}
	if diff := cmp.Diff(wantRef, provisioner.Spec.NodeClassRef); diff != "" {
		t.Errorf("defaulted nodeClassRef (-want, +got):\n%s", diff)
	}
	if got := nodeClass.Spec.AMIFamily; got != v1alpha1.AMIFamilyAL2023 {
		t.Errorf("defaulted amiFamily = %q, want AL2023", got)
	}
	wantMetadata := &v1alpha1.MetadataOptions{
		HTTPEndpoint:            ptr.To("enabled"),
		HTTPProtocolIPv6:        ptr.To("disabled"),
		HTTPPutResponseHopLimit: ptr.To[int64](1),
		HTTPTokens:              ptr.To("required"),
	}
	if diff := cmp.Diff(wantMetadata, nodeClass.Spec.MetadataOptions); diff != "" {
		t.Errorf("defaulted metadataOptions (-want, +got):\n%s", diff)
	}
}

// TestAPINodeClaimSpecIsImmutable updates a NodeClaim: its spec is refused, its metadata and
// status are not.
func TestAPINodeClaimSpecIsImmutable(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	claim := createObjects(ctx, t, decodeManifests(t, []byte(validNodeClaim)))[0]
	client := resourceClient(t, claim)

	changed := claim.DeepCopy()
	if err := unstructured.SetNestedField(changed.Object, "other", "spec", "provisioner"); err != nil {
		t.Fatal(err)
	}
	_, err := client.Update(ctx, changed, metav1.UpdateOptions{})
	assertInvalid(t, err, metav1.StatusCause{Type: metav1.CauseTypeFieldValueInvalid, Field: "spec", Message: "spec is immutable"})

	changed = claim.DeepCopy()
	changed.SetLabels(map[string]string{"example.com/owner": "test"})
	updated, err := client.Update(ctx, changed, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("updating the NodeClaim's labels: %v", err)
	}
	if err := unstructured.SetNestedField(updated.Object, "i-0123456789abcdef0", "status", "instanceID"); err != nil {
		t.Fatal(err)
	}
	if _, err := client.UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating the NodeClaim's status: %v", err)
	}
}

// TestAPIInstallCRDsUpdates installs the CRDs a second time (framework.Main installed them
// first): the existing CRDs are updated in place.
func TestAPIInstallCRDsUpdates(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	if err := sandbox.InstallCRDs(ctx, framework.RESTConfig(t), manifests.CRDs()...); err != nil {
		t.Fatal(err)
	}
}

// decodeManifests splits a multi-document YAML file into objects, each of which must decode
// strictly (no unknown or duplicate field) into its v1alpha1 type.
func decodeManifests(t testing.TB, data []byte) []*unstructured.Unstructured {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	strict := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objects []*unstructured.Unstructured
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading YAML: %v", err)
		}
		jsonDoc, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("converting YAML: %v", err)
		}
		if string(bytes.TrimSpace(jsonDoc)) == "null" {
			continue // a document of comments only
		}
		if _, _, err := strict.Decode(jsonDoc, nil, nil); err != nil {
			t.Fatalf("decoding %s strictly: %v", jsonDoc, err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(jsonDoc); err != nil {
			t.Fatal(err)
		}
		objects = append(objects, u)
	}
	return objects
}

// createObjects creates objects in order with strict field validation, deletes them when the
// test ends, and returns them as the apiserver stored them.
func createObjects(ctx context.Context, t testing.TB, objects []*unstructured.Unstructured) []*unstructured.Unstructured {
	t.Helper()
	var created []*unstructured.Unstructured
	for _, obj := range objects {
		client := resourceClient(t, obj)
		got, err := client.Create(ctx, obj, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
		if err != nil {
			t.Fatalf("creating %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
		t.Cleanup(func() {
			if err := client.Delete(context.Background(), got.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("deleting %s %s: %v", got.GetKind(), got.GetName(), err)
			}
		})
		created = append(created, got)
	}
	return created
}

// resourceClient returns a dynamic client for obj's kind, one of nodewright's.
func resourceClient(t testing.TB, obj *unstructured.Unstructured) dynamic.ResourceInterface {
	t.Helper()
	resources := map[string]string{"Provisioner": "provisioners", "EC2NodeClass": "ec2nodeclasses", "NodeClaim": "nodeclaims"}
	resource, ok := resources[obj.GetKind()]
	if !ok || obj.GetAPIVersion() != v1alpha1.SchemeGroupVersion.String() {
		t.Fatalf("%s %s is not a nodewright object", obj.GetAPIVersion(), obj.GetKind())
	}
	client, err := dynamic.NewForConfig(framework.RESTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return client.Resource(v1alpha1.SchemeGroupVersion.WithResource(resource))
}

// assertInvalid checks that err is the apiserver's Invalid error with a cause of want's type
// on want's field whose message contains want's message.
func assertInvalid(t testing.TB, err error, want metav1.StatusCause) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s on %s: %s", want.Type, want.Field, want.Message)
	}
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) || status.Status().Details == nil {
		t.Fatalf("error %v, want Invalid", err)
	}
	causes := status.Status().Details.Causes
	for _, c := range causes {
		if c.Type == want.Type && c.Field == want.Field && strings.Contains(c.Message, want.Message) {
			return
		}
	}
	got, _ := json.MarshalIndent(causes, "", "  ")
	t.Errorf("no cause %s on %s containing %q; got:\n%s", want.Type, want.Field, want.Message, got)
}

// patched returns the object of base with patch applied as a JSON merge patch (RFC 7386).
func patched(t testing.TB, base, patch string) *unstructured.Unstructured {
	t.Helper()
	var obj, p map[string]any
	if err := yaml.Unmarshal([]byte(base), &obj); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(patch), &p); err != nil {
		t.Fatalf("patch %s: %v", patch, err)
	}
	data, err := json.Marshal(mergePatch(obj, p))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	return u
}

func mergePatch(target any, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}
