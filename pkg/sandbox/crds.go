package sandbox

import (
	"context"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apiextensionsv1client "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/typed/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"
)

// crdEstablishTimeout bounds the wait for one CRD to be served. The apiserver establishes a
// CRD within a second or two; a CRD that is not established by then never will be (its names
// conflict with another's).
const crdEstablishTimeout = time.Minute

// InstallCRDs creates the CustomResourceDefinitions in crds (one YAML document each, as
// manifests.CRDs returns them), or updates those that exist, and waits until every one is
// Established, so objects of its kind can be created as soon as it returns.
func InstallCRDs(ctx context.Context, cfg *rest.Config, crds ...[]byte) error {
	client, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating the apiextensions client: %w", err)
	}
	crdClient := client.ApiextensionsV1().CustomResourceDefinitions()
	names := make([]string, 0, len(crds))
	for _, data := range crds {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(data, crd); err != nil {
			return fmt.Errorf("decoding a CustomResourceDefinition: %w", err)
		}
		if err := createOrUpdateCRD(ctx, crdClient, crd); err != nil {
			return err
		}
		names = append(names, crd.Name)
	}
	for _, name := range names {
		if err := waitEstablished(ctx, crdClient, name); err != nil {
			return err
		}
	}
	klog.FromContext(ctx).V(2).Info("Installed CRDs", "crds", names)
	return nil
}

func createOrUpdateCRD(ctx context.Context, client apiextensionsv1client.CustomResourceDefinitionInterface, crd *apiextensionsv1.CustomResourceDefinition) error {
	_, err := client.Create(ctx, crd, metav1.CreateOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating CRD %s: %w", crd.Name, err)
	}
	existing, err := client.Get(ctx, crd.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("getting CRD %s: %w", crd.Name, err)
	}
	crd.ResourceVersion = existing.ResourceVersion
	if _, err := client.Update(ctx, crd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating CRD %s: %w", crd.Name, err)
	}
	return nil
}

func waitEstablished(ctx context.Context, client apiextensionsv1client.CustomResourceDefinitionInterface, name string) error {
	var last *apiextensionsv1.CustomResourceDefinition
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, crdEstablishTimeout, true, func(ctx context.Context) (bool, error) {
		crd, err := client.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = crd
		return crdCondition(crd, apiextensionsv1.Established) == apiextensionsv1.ConditionTrue, nil
	})
	if err != nil {
		detail := ""
		if last != nil {
			for _, c := range last.Status.Conditions {
				if c.Status != apiextensionsv1.ConditionTrue {
					detail += fmt.Sprintf("; %s: %s", c.Type, c.Message)
				}
			}
		}
		return fmt.Errorf("waiting for CRD %s to be established%s: %w", name, detail, err)
	}
	return nil
}

func crdCondition(crd *apiextensionsv1.CustomResourceDefinition, t apiextensionsv1.CustomResourceDefinitionConditionType) apiextensionsv1.ConditionStatus {
	for _, c := range crd.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return apiextensionsv1.ConditionUnknown
}
