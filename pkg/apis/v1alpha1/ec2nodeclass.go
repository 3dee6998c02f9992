package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EC2NodeClass holds the AWS settings of the nodes of the Provisioners that reference it:
// where they launch (subnets, security groups), what they boot (AMI family and AMIs, user
// data), who they are (instance profile or IAM role), and how (tags, block devices, instance
// metadata options). It is the inline `provider:` of the seed's v1alpha5 Provisioner.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=nodewright
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="AMIFamily",type=string,JSONPath=`.spec.amiFamily`
// +kubebuilder:printcolumn:name="InstanceProfile",type=string,JSONPath=`.status.instanceProfile`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EC2NodeClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is what the user configures.
	//
	// +required
	Spec EC2NodeClassSpec `json:"spec"`

	// Status is what nodewright resolved the spec's selectors to.
	//
	// +optional
	Status EC2NodeClassStatus `json:"status,omitzero"`
}

// AMIFamily is the kind of AMI a node boots, which decides its user data's format and where
// its AMIs come from.
type AMIFamily string

// AMI families.
const (
	// AMIFamilyAL2023 is Amazon Linux 2023 (EKS optimized, nodeadm user data), the default.
	AMIFamilyAL2023 AMIFamily = "AL2023"
	// AMIFamilyBottlerocket is Bottlerocket (TOML user data).
	AMIFamilyBottlerocket AMIFamily = "Bottlerocket"
	// AMIFamilyCustom is an AMI of the user's, selected by amiSelector, whose user data is
	// taken as it is.
	AMIFamilyCustom AMIFamily = "Custom"
)

// EC2NodeClassSpec is the AWS configuration of nodes.
//
// +kubebuilder:validation:ExactlyOneOf=instanceProfile;role
// +kubebuilder:validation:XValidation:rule="self.amiFamily != 'Custom' || has(self.amiSelector)",message="amiFamily Custom needs an amiSelector",fieldPath=".amiSelector",reason="FieldValueRequired"
type EC2NodeClassSpec struct {
	// SubnetSelector selects the subnets nodes launch in, by tags or by IDs; the zones of the
	// subnets are the zones nodes can launch in.
	//
	// +required
	SubnetSelector SubnetSelector `json:"subnetSelector"`

	// SecurityGroupSelector selects the security groups of the nodes, by tags or by IDs.
	//
	// +required
	SecurityGroupSelector SecurityGroupSelector `json:"securityGroupSelector"`

	// AMIFamily is the kind of AMI nodes boot: AL2023 (the default), Bottlerocket or Custom.
	//
	// +optional
	// +kubebuilder:default=AL2023
	// +kubebuilder:validation:Enum=AL2023;Bottlerocket;Custom
	AMIFamily AMIFamily `json:"amiFamily,omitempty"`

	// AMISelector selects the AMIs nodes boot, instead of the AMI family's latest EKS
	// optimized AMIs. Required with amiFamily Custom.
	//
	// +optional
	AMISelector *AMISelector `json:"amiSelector,omitempty"`

	// InstanceProfile is the name of the IAM instance profile of the nodes. Exactly one of
	// instanceProfile and role is set.
	//
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	InstanceProfile *string `json:"instanceProfile,omitempty"`

	// Role is the name of the IAM role of the nodes, for which nodewright creates and
	// manages an instance profile. Exactly one of instanceProfile and role is set.
	//
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Role *string `json:"role,omitempty"`

	// UserData is added to the user data nodewright generates for the AMI family (merged as
	// a MIME part for AL2023, as TOML for Bottlerocket), or used as it is with Custom.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=16384
	UserData *string `json:"userData,omitempty"`

	// Tags are put on every instance, volume and launch template nodewright creates, besides
	// its own nodewright.dev/cluster, nodewright.dev/provisioner-name and
	// nodewright.dev/nodeclaim, which may not be set here.
	//
	// +optional
	// +kubebuilder:validation:MaxProperties=40
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) >= 1 && size(k) <= 128 && size(self[k]) <= 256)",message="tag keys must have 1 to 128 characters and values at most 256"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !(k in ['nodewright.dev/cluster', 'nodewright.dev/provisioner-name', 'nodewright.dev/nodeclaim']))",message="tags \"nodewright.dev/cluster\", \"nodewright.dev/provisioner-name\" and \"nodewright.dev/nodeclaim\" are managed by nodewright",reason="FieldValueForbidden"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('kubernetes.io/cluster/'))",message="tags \"kubernetes.io/cluster/*\" are managed by nodewright",reason="FieldValueForbidden"
	Tags map[string]string `json:"tags,omitempty"`

	// BlockDeviceMappings are the volumes of the nodes. Unset, the AMI family's root volume
	// is used.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50
	// +kubebuilder:validation:XValidation:rule="self.filter(m, has(m.rootVolume) && m.rootVolume).size() <= 1",message="at most one block device mapping can be the root volume"
	BlockDeviceMappings []BlockDeviceMapping `json:"blockDeviceMappings,omitempty"`

	// MetadataOptions configure the nodes' instance metadata service. The default requires
	// IMDSv2 tokens with a hop limit of 1, so pods cannot reach the node's credentials.
	//
	// +optional
	// +kubebuilder:default={httpEndpoint: enabled, httpProtocolIPv6: disabled, httpPutResponseHopLimit: 1, httpTokens: required}
	MetadataOptions *MetadataOptions `json:"metadataOptions,omitempty"`

	// AssociatePublicIPAddress gives nodes a public IP address, overriding the subnet's
	// setting. Unset, the subnet decides.
	//
	// +optional
	AssociatePublicIPAddress *bool `json:"associatePublicIPAddress,omitempty"`
}

// SubnetSelector selects subnets by tags or by IDs, not both.
//
// +kubebuilder:validation:ExactlyOneOf=tags;ids
type SubnetSelector struct {
	// Tags select the subnets that have every one of these tags; a value of "*" matches any
	// value.
	//
	// +optional
	// +kubebuilder:validation:MinProperties=1
	// +kubebuilder:validation:MaxProperties=20
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) >= 1 && size(k) <= 128 && size(self[k]) >= 1 && size(self[k]) <= 256)",message="tag keys must have 1 to 128 characters and values 1 to 256"
	Tags map[string]string `json:"tags,omitempty"`

	// IDs select these subnets.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=30
	// +kubebuilder:validation:items:Pattern=`^subnet-[0-9a-z]+$`
	// +kubebuilder:validation:items:MaxLength=32
	IDs []string `json:"ids,omitempty"`
}

// SecurityGroupSelector selects security groups by tags or by IDs, not both.
//
// +kubebuilder:validation:ExactlyOneOf=tags;ids
type SecurityGroupSelector struct {
	// Tags select the security groups that have every one of these tags; a value of "*"
	// matches any value.
	//
	// +optional
	// +kubebuilder:validation:MinProperties=1
	// +kubebuilder:validation:MaxProperties=20
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) >= 1 && size(k) <= 128 && size(self[k]) >= 1 && size(self[k]) <= 256)",message="tag keys must have 1 to 128 characters and values 1 to 256"
	Tags map[string]string `json:"tags,omitempty"`

	// IDs select these security groups.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Pattern=`^sg-[0-9a-z]+$`
	// +kubebuilder:validation:items:MaxLength=32
	IDs []string `json:"ids,omitempty"`
}

// AMISelector selects AMIs by tags, IDs, or name and owner. Of the AMIs selected, a node boots
// the newest that matches its instance type's architecture.
//
// +kubebuilder:validation:XValidation:rule="has(self.tags) || has(self.ids) || has(self.name)",message="an AMI selector needs tags, ids or a name"
// +kubebuilder:validation:XValidation:rule="!has(self.ids) || !(has(self.tags) || has(self.name) || has(self.owner))",message="ids cannot be combined with tags, name or owner",fieldPath=".ids",reason="FieldValueForbidden"
type AMISelector struct {
	// Tags select the AMIs that have every one of these tags; a value of "*" matches any
	// value.
	//
	// +optional
	// +kubebuilder:validation:MinProperties=1
	// +kubebuilder:validation:MaxProperties=20
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) >= 1 && size(k) <= 128 && size(self[k]) >= 1 && size(self[k]) <= 256)",message="tag keys must have 1 to 128 characters and values 1 to 256"
	Tags map[string]string `json:"tags,omitempty"`

	// IDs select these AMIs.
	//
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=30
	// +kubebuilder:validation:items:Pattern=`^ami-[0-9a-z]+$`
	// +kubebuilder:validation:items:MaxLength=32
	IDs []string `json:"ids,omitempty"`

	// Name selects the AMIs of this name; it may contain the wildcards * and ?.
	//
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Name string `json:"name,omitempty"`

	// Owner restricts the AMIs selected to an owner: an AWS account ID, "self" or "amazon".
	// Unset, the selector's own account and Amazon's are searched.
	//
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]{12}|self|amazon|aws-marketplace)$`
	Owner string `json:"owner,omitempty"`
}

// BlockDeviceMapping is a volume of a node.
type BlockDeviceMapping struct {
	// DeviceName is the device's name, e.g. /dev/xvda.
	//
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	DeviceName string `json:"deviceName"`

	// EBS is the EBS volume of the device.
	//
	// +optional
	EBS *BlockDevice `json:"ebs,omitempty"`

	// RootVolume marks the device as the node's root volume, whose size counts as the node's
	// ephemeral storage.
	//
	// +optional
	RootVolume bool `json:"rootVolume,omitempty"`
}

// BlockDevice is an EBS volume.
type BlockDevice struct {
	// DeleteOnTermination deletes the volume with the instance (the default).
	//
	// +optional
	DeleteOnTermination *bool `json:"deleteOnTermination,omitempty"`

	// Encrypted encrypts the volume.
	//
	// +optional
	Encrypted *bool `json:"encrypted,omitempty"`

	// IOPS is the volume's provisioned I/O operations per second (io1, io2, gp3).
	//
	// +optional
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=256000
	IOPS *int64 `json:"iops,omitempty"`

	// KMSKeyID is the ARN of the KMS key that encrypts the volume.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	KMSKeyID *string `json:"kmsKeyID,omitempty"`

	// SnapshotID is the snapshot the volume is created from.
	//
	// +optional
	// +kubebuilder:validation:Pattern=`^snap-[0-9a-z]+$`
	// +kubebuilder:validation:MaxLength=32
	SnapshotID *string `json:"snapshotID,omitempty"`

	// Throughput is the volume's throughput in MiB/s (gp3 only).
	//
	// +optional
	// +kubebuilder:validation:Minimum=125
	// +kubebuilder:validation:Maximum=2000
	Throughput *int64 `json:"throughput,omitempty"`

	// VolumeSize is the volume's size, e.g. 100Gi.
	//
	// +optional
	VolumeSize *resource.Quantity `json:"volumeSize,omitempty"`

	// VolumeType is the volume's EBS type.
	//
	// +optional
	// +kubebuilder:validation:Enum=standard;io1;io2;gp2;sc1;st1;gp3
	VolumeType *string `json:"volumeType,omitempty"`
}

// MetadataOptions configure an instance's metadata service (IMDS).
type MetadataOptions struct {
	// HTTPEndpoint enables or disables the metadata service.
	//
	// +optional
	// +kubebuilder:default=enabled
	// +kubebuilder:validation:Enum=enabled;disabled
	HTTPEndpoint *string `json:"httpEndpoint,omitempty"`

	// HTTPProtocolIPv6 enables or disables the metadata service's IPv6 endpoint.
	//
	// +optional
	// +kubebuilder:default=disabled
	// +kubebuilder:validation:Enum=enabled;disabled
	HTTPProtocolIPv6 *string `json:"httpProtocolIPv6,omitempty"`

	// HTTPPutResponseHopLimit is how many network hops a metadata token travels: 1 keeps it
	// on the node, out of pods' reach.
	//
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=64
	HTTPPutResponseHopLimit *int64 `json:"httpPutResponseHopLimit,omitempty"`

	// HTTPTokens is "required" for IMDSv2 only, or "optional" to also allow IMDSv1.
	//
	// +optional
	// +kubebuilder:default=required
	// +kubebuilder:validation:Enum=required;optional
	HTTPTokens *string `json:"httpTokens,omitempty"`
}

// EC2NodeClassStatus is what nodewright resolved an EC2NodeClass's selectors to.
type EC2NodeClassStatus struct {
	// Subnets are the subnets selected, with their zones.
	//
	// +optional
	// +listType=atomic
	Subnets []Subnet `json:"subnets,omitempty"`

	// SecurityGroups are the security groups selected.
	//
	// +optional
	// +listType=atomic
	SecurityGroups []SecurityGroup `json:"securityGroups,omitempty"`

	// AMIs are the AMIs nodes boot, with the requirements (architecture, ...) each serves.
	//
	// +optional
	// +listType=atomic
	AMIs []AMI `json:"amis,omitempty"`

	// InstanceProfile is the instance profile of the nodes: spec.instanceProfile, or the one
	// nodewright manages for spec.role.
	//
	// +optional
	InstanceProfile string `json:"instanceProfile,omitempty"`

	// Conditions are the EC2NodeClass's conditions. Ready is true when every selector
	// resolved to at least one resource.
	//
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Subnet is a subnet an EC2NodeClass selected.
type Subnet struct {
	// ID is the subnet's ID.
	//
	// +required
	ID string `json:"id"`

	// Zone is the subnet's availability zone, e.g. us-east-1a.
	//
	// +required
	Zone string `json:"zone"`

	// ZoneID is the subnet's availability zone ID, e.g. use1-az1.
	//
	// +optional
	ZoneID string `json:"zoneID,omitempty"`
}

// SecurityGroup is a security group an EC2NodeClass selected.
type SecurityGroup struct {
	// ID is the security group's ID.
	//
	// +required
	ID string `json:"id"`

	// Name is the security group's name.
	//
	// +optional
	Name string `json:"name,omitempty"`
}

// AMI is an AMI an EC2NodeClass resolved.
type AMI struct {
	// ID is the AMI's ID.
	//
	// +required
	ID string `json:"id"`

	// Name is the AMI's name.
	//
	// +optional
	Name string `json:"name,omitempty"`

	// Requirements are what a node must satisfy to boot this AMI, e.g. kubernetes.io/arch
	// In [arm64].
	//
	// +optional
	// +listType=atomic
	Requirements []corev1.NodeSelectorRequirement `json:"requirements,omitempty"`
}

// EC2NodeClassList is a list of EC2NodeClasses.
//
// +kubebuilder:object:root=true
type EC2NodeClassList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	// Items are the EC2NodeClasses.
	Items []EC2NodeClass `json:"items"`
}
