package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

// fieldManager is the server-side apply field manager of the objects the tests apply.
const fieldManager = "nodewright-integration-test"

// DecodeObjects splits a stream of YAML documents (kubectl kustomize's or helm template's
// output) into objects, skipping empty documents.
func DecodeObjects(t testing.TB, data []byte) []*unstructured.Unstructured {
	t.Helper()
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var raw map[string]any
		err := decoder.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("decoding objects: %v", err)
		}
		if len(raw) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: raw})
		}
	}
}

// DryRunApply applies every object to the shared control plane with a server-side dry run
// and strict field validation (an unknown or misspelt field is an error, not a field
// dropped), as `kubectl apply --server-side --dry-run=server` does, and fails the test for
// each object refused.
func DryRunApply(ctx context.Context, t testing.TB, objs []*unstructured.Unstructured) {
	t.Helper()
	a := newApplier(t)
	for _, obj := range objs {
		if err := a.apply(ctx, obj, true); err != nil {
			t.Errorf("%s refused: %v", describe(obj), err)
		}
	}
}

// Apply creates or updates every object with server-side apply, and deletes them, in
// reverse order, when the test ends.
func Apply(ctx context.Context, t testing.TB, objs []*unstructured.Unstructured) {
	t.Helper()
	a := newApplier(t)
	for _, obj := range objs {
		if err := a.apply(ctx, obj, false); err != nil {
			t.Fatalf("applying %s: %v", describe(obj), err)
		}
		t.Cleanup(func() {
			resource, err := a.resource(obj)
			if err == nil {
				err = resource.Delete(context.Background(), obj.GetName(), metav1.DeleteOptions{})
			}
			if err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("deleting %s: %v", describe(obj), err)
			}
		})
	}
}

// applier applies objects of any kind the control plane serves.
type applier struct {
	mapper meta.RESTMapper
	client dynamic.Interface
}

func newApplier(t testing.TB) *applier {
	t.Helper()
	config := RESTConfig(t)
	dc, err := discovery.NewDiscoveryClientForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	client, err := dynamic.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), client: client}
}

// resource returns the client of obj's resource, in obj's namespace if it has one.
func (a *applier) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("no resource for %s: %w", gvk, err)
	}
	if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
		return a.client.Resource(mapping.Resource), nil
	}
	if obj.GetNamespace() == "" {
		return nil, errors.New("namespaced, but without a namespace")
	}
	return a.client.Resource(mapping.Resource).Namespace(obj.GetNamespace()), nil
}

func (a *applier) apply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) error {
	resource, err := a.resource(obj)
	if err != nil {
		return err
	}
	data, err := runtime.Encode(unstructured.UnstructuredJSONScheme, obj)
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: fieldManager, Force: ptr.To(true), FieldValidation: metav1.FieldValidationStrict}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = resource.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
	return err
}

func describe(obj *unstructured.Unstructured) string {
	if obj.GetNamespace() == "" {
		return obj.GetKind() + " " + obj.GetName()
	}
	return obj.GetKind() + " " + obj.GetNamespace() + "/" + obj.GetName()
}

// ServiceAccountKubeconfig writes a kubeconfig that authenticates to the shared control
// plane as the ServiceAccount namespace/name, with a token valid for an hour, and returns
// its path.
func ServiceAccountKubeconfig(ctx context.Context, t testing.TB, namespace, name string) string {
	t.Helper()
	token, err := Client(t).CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(time.Hour / time.Second))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a token of service account %s/%s: %v", namespace, name, err)
	}
	config := RESTConfig(t)
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters["sandbox"] = &clientcmdapi.Cluster{Server: config.Host, CertificateAuthorityData: config.CAData}
	kubeconfig.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token.Status.Token}
	kubeconfig.Contexts[name] = &clientcmdapi.Context{Cluster: "sandbox", AuthInfo: name}
	kubeconfig.CurrentContext = name
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := clientcmd.WriteToFile(*kubeconfig, path); err != nil {
		t.Fatal(err)
	}
	return path
}
