package main

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
)

// defaultNodeClass is the EC2NodeClass the sandbox creates: it selects the emulator's subnets
// and security group, so a Provisioner referencing it works out of the box.
const defaultNodeClass = "default"

var defaultNodeClassYAML = fmt.Sprintf(`apiVersion: nodewright.dev/v1alpha1
kind: EC2NodeClass
metadata:
  name: %s
spec:
  subnetSelector:
    tags:
      %s: %s
  securityGroupSelector:
    tags:
      %s: %s
  instanceProfile: NodewrightNodeInstanceProfile-%s
`, defaultNodeClass, emulator.DiscoveryTagKey, emulator.DefaultClusterName, emulator.DiscoveryTagKey, emulator.DefaultClusterName, emulator.DefaultClusterName)

func createDefaultNodeClass(ctx context.Context, cfg *rest.Config) error {
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(defaultNodeClassYAML), &obj.Object); err != nil {
		return err
	}
	gvr := v1alpha1.SchemeGroupVersion.WithResource("ec2nodeclasses")
	if _, err := client.Resource(gvr).Create(ctx, obj, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
		return fmt.Errorf("creating EC2NodeClass %s: %w", defaultNodeClass, err)
	}
	return nil
}
