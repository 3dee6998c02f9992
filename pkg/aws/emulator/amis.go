package emulator

import (
	"fmt"
	"time"
)

// Owners of the public AMIs.
const (
	eksAMIOwner          = "602401143452"
	bottlerocketAMIOwner = "092701018921"
)

// KubernetesMinorVersions are the Kubernetes 1.x minor versions the public AMI parameters
// exist for.
var KubernetesMinorVersions = []int{28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40}

// amiCreationDate is the creation date of every public AMI.
var amiCreationDate = time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)

// publicAMI is an AMI published behind an SSM parameter.
type publicAMI struct {
	parameter string
	image     Image
}

// publicAMIs lists the public AMI parameters and their images, for every minor version:
//
//	/aws/service/eks/optimized-ami/1.N/amazon-linux-2023/{x86_64,arm64}/{standard,nvidia}/recommended/image_id
//	/aws/service/eks/optimized-ami/1.N/amazon-linux-2023/x86_64/neuron/recommended/image_id
//	/aws/service/bottlerocket/aws-k8s-1.N/{x86_64,arm64}/latest/image_id
//	/aws/service/bottlerocket/aws-k8s-1.N-nvidia/{x86_64,arm64}/latest/image_id
//
// Each image's ID is "ami-0" followed by 16 hex digits of a hash of the parameter name.
func publicAMIs() []publicAMI {
	var amis []publicAMI
	add := func(parameter, name, arch, owner, description string) {
		amis = append(amis, publicAMI{parameter: parameter, image: Image{
			ID:           deterministicID("ami-", parameter),
			Name:         name,
			Architecture: arch,
			OwnerID:      owner,
			OwnerAlias:   "amazon",
			Description:  description,
			CreationDate: amiCreationDate,
			Public:       true,
		}})
	}
	for _, minor := range KubernetesMinorVersions {
		version := fmt.Sprintf("1.%d", minor)
		for _, arch := range []string{"x86_64", "arm64"} {
			variants := []string{"standard", "nvidia"}
			if arch == "x86_64" {
				variants = append(variants, "neuron")
			}
			for _, variant := range variants {
				add(fmt.Sprintf("/aws/service/eks/optimized-ami/%s/amazon-linux-2023/%s/%s/recommended/image_id", version, arch, variant),
					fmt.Sprintf("amazon-eks-node-al2023-%s-%s-%s-v20260801", arch, variant, version), arch, eksAMIOwner,
					fmt.Sprintf("EKS-optimized Kubernetes node based on Amazon Linux 2023, (k8s: %s, variant: %s)", version, variant))
			}
			for _, flavor := range []string{"", "-nvidia"} {
				add(fmt.Sprintf("/aws/service/bottlerocket/aws-k8s-%s%s/%s/latest/image_id", version, flavor, arch),
					fmt.Sprintf("bottlerocket-aws-k8s-%s%s-%s-v1.40.0-5d4c3b2a", version, flavor, arch), arch, bottlerocketAMIOwner,
					fmt.Sprintf("Bottlerocket OS 1.40.0 (aws-k8s-%s%s)", version, flavor))
			}
		}
	}
	return amis
}
