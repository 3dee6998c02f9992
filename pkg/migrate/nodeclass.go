package migrate

import (
	"strings"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// nodeClassV1alpha1 converts the AWS settings of Karpenter's v1alpha5 era, the inline
// `provider:` of a Provisioner or the spec of an AWSNodeTemplate, whose selectors are tag maps
// in which the key aws-ids lists IDs.
func nodeClassV1alpha1(f *fields, spec *v1alpha1.EC2NodeClassSpec) {
	if tags, ids, ok := selectorMap(f, "subnetSelector"); ok {
		spec.SubnetSelector = v1alpha1.SubnetSelector{Tags: tags, IDs: ids}
	}
	if tags, ids, ok := selectorMap(f, "securityGroupSelector"); ok {
		spec.SecurityGroupSelector = v1alpha1.SecurityGroupSelector{Tags: tags, IDs: ids}
	}
	spec.AMIFamily = amiFamily(f)
	if m := f.stringMap("amiSelector"); m != nil {
		sel := &v1alpha1.AMISelector{}
		for _, k := range sortedKeys(m) {
			v := m[k]
			switch k {
			case "aws-ids", "aws::ids":
				sel.IDs = splitIDs(v)
			case "aws::name":
				sel.Name = v
			case "aws::owners":
				owners := splitIDs(v)
				if len(owners) > 0 {
					sel.Owner = owners[0]
				}
				if len(owners) > 1 {
					f.obj.warn(f.at("amiSelector")+"."+k, "nodewright selects AMIs of one owner: only %s is carried over", owners[0])
				}
			default:
				if strings.HasPrefix(k, "aws::") {
					f.obj.warn(f.at("amiSelector")+"."+k, "not supported: not carried over")
					continue
				}
				if sel.Tags == nil {
					sel.Tags = map[string]string{}
				}
				sel.Tags[k] = v
			}
		}
		if len(sel.IDs) > 0 && (sel.Tags != nil || sel.Name != "" || sel.Owner != "") {
			f.obj.warn(f.at("amiSelector"), "nodewright selects AMIs by IDs or by tags, name and owner, not both: only the IDs are carried over")
			sel = &v1alpha1.AMISelector{IDs: sel.IDs}
		}
		spec.AMISelector = sel
	}
	f.drop("launchTemplate", "launch templates are not supported: nodewright makes its own from the EC2NodeClass")
	nodeClassCommon(f, spec)
}

// selectorMap converts a v1alpha5-era selector: tags, or IDs under the key aws-ids.
func selectorMap(f *fields, key string) (map[string]string, []string, bool) {
	m := f.stringMap(key)
	if m == nil {
		f.obj.warn(f.at(key), "missing: nodewright needs a %s; set it in the EC2NodeClass", key)
		return nil, nil, false
	}
	var ids []string
	tags := map[string]string{}
	for _, k := range sortedKeys(m) {
		v := m[k]
		switch {
		case k == "aws-ids" || k == "aws::ids":
			ids = splitIDs(v)
		case strings.HasPrefix(k, "aws::"):
			f.obj.warn(f.at(key)+"."+k, "not supported: not carried over")
		default:
			tags[k] = v
		}
	}
	if len(ids) > 0 {
		if len(tags) > 0 {
			f.obj.warn(f.at(key), "nodewright selects by tags or by IDs, not both: only the IDs are carried over")
		}
		return nil, ids, true
	}
	return tags, nil, true
}

func splitIDs(s string) []string {
	var out []string
	for _, id := range strings.Split(s, ",") {
		if id = strings.TrimSpace(id); id != "" {
			out = append(out, id)
		}
	}
	return out
}

// amiFamily converts amiFamily; empty means nodewright's default, AL2023.
func amiFamily(f *fields) v1alpha1.AMIFamily {
	family, ok := f.str("amiFamily")
	if !ok {
		return ""
	}
	switch family {
	case string(v1alpha1.AMIFamilyAL2023), string(v1alpha1.AMIFamilyBottlerocket), string(v1alpha1.AMIFamilyCustom):
		return v1alpha1.AMIFamily(family)
	case "AL2":
		f.warn("amiFamily", "AL2 is not supported: nodes run AL2023, whose user data differs")
	default:
		f.warn("amiFamily", "%s is not supported (AL2023, Bottlerocket or Custom): nodes run AL2023", family)
	}
	return ""
}

// nodeClassCommon converts the fields of every Karpenter API version's AWS settings.
func nodeClassCommon(f *fields, spec *v1alpha1.EC2NodeClassSpec) {
	spec.InstanceProfile = f.strPtr("instanceProfile")
	spec.Role = f.strPtr("role")
	spec.UserData = f.strPtr("userData")
	spec.Tags = f.stringMap("tags")
	spec.AssociatePublicIPAddress = f.boolPtr("associatePublicIPAddress")
	for _, b := range f.objects("blockDeviceMappings") {
		spec.BlockDeviceMappings = append(spec.BlockDeviceMappings, blockDeviceMapping(b))
	}
	if m := f.object("metadataOptions"); m != nil {
		spec.MetadataOptions = &v1alpha1.MetadataOptions{
			HTTPEndpoint:            m.strPtr("httpEndpoint"),
			HTTPProtocolIPv6:        m.strPtr("httpProtocolIPv6"),
			HTTPPutResponseHopLimit: m.int64Ptr("httpPutResponseHopLimit"),
			HTTPTokens:              m.strPtr("httpTokens"),
		}
		m.done()
	}
	f.drop("detailedMonitoring", "detailed monitoring is not supported: instances have basic monitoring")
	f.drop("instanceStorePolicy", "instance store policies are not supported: instance stores are left unformatted")
	f.drop("context", "EC2 fleet contexts are not supported")
	if spec.InstanceProfile == nil && spec.Role == nil {
		f.obj.warn(f.at("instanceProfile"), "missing: nodewright needs an instanceProfile or a role; set one in the EC2NodeClass")
	}
	if spec.AMIFamily == v1alpha1.AMIFamilyCustom && spec.AMISelector == nil {
		f.obj.warn(f.at("amiFamily"), "Custom needs an AMI selector, and none was carried over; set amiSelector in the EC2NodeClass")
	}
}

func blockDeviceMapping(f *fields) v1alpha1.BlockDeviceMapping {
	var m v1alpha1.BlockDeviceMapping
	m.DeviceName, _ = f.str("deviceName")
	if root := f.boolPtr("rootVolume"); root != nil {
		m.RootVolume = *root
	}
	if e := f.object("ebs"); e != nil {
		m.EBS = &v1alpha1.BlockDevice{
			DeleteOnTermination: e.boolPtr("deleteOnTermination"),
			Encrypted:           e.boolPtr("encrypted"),
			IOPS:                e.int64Ptr("iops"),
			KMSKeyID:            e.strPtr("kmsKeyID"),
			SnapshotID:          e.strPtr("snapshotID"),
			Throughput:          e.int64Ptr("throughput"),
			VolumeSize:          e.quantity("volumeSize"),
			VolumeType:          e.strPtr("volumeType"),
		}
		e.done()
	}
	f.done()
	return m
}

// nodeClassV1 converts the spec of a karpenter.k8s.aws/v1 EC2NodeClass, whose selectors are
// lists of terms, any of which a resource may match. nodewright's selectors are one term, by
// tags or by IDs: ID terms are merged, and of tag terms only the first is carried over.
func nodeClassV1(f *fields, spec *v1alpha1.EC2NodeClassSpec) {
	tags, ids := selectorTerms(f, "subnetSelectorTerms")
	spec.SubnetSelector = v1alpha1.SubnetSelector{Tags: tags, IDs: ids}
	tags, ids = selectorTerms(f, "securityGroupSelectorTerms")
	spec.SecurityGroupSelector = v1alpha1.SecurityGroupSelector{Tags: tags, IDs: ids}
	spec.AMIFamily = amiFamily(f)
	amiTerms(f, spec)
	f.drop("capacityReservationSelectorTerms", "capacity reservations are not supported: nodes launch as spot or on-demand")
	nodeClassCommon(f, spec)
}

func selectorTerms(f *fields, key string) (map[string]string, []string) {
	terms := f.objects(key)
	if len(terms) == 0 {
		f.obj.warn(f.at(key), "missing: nodewright needs a selector; set it in the EC2NodeClass")
		return nil, nil
	}
	var tags map[string]string
	var ids []string
	for _, t := range terms {
		termTags := t.stringMap("tags")
		id, hasID := t.str("id")
		t.drop("name", "nodewright selects by tags or by IDs, not by name: the term is dropped")
		t.done()
		switch {
		case hasID && termTags == nil && tags == nil:
			ids = append(ids, id)
		case termTags != nil && !hasID && ids == nil && tags == nil:
			tags = termTags
		case hasID || termTags != nil:
			t.obj.warn(t.path, "nodewright selects by one set of tags or by IDs: the term is dropped, so fewer resources are selected")
		}
	}
	return tags, ids
}

// amiTerms converts amiSelectorTerms: an alias becomes the AMI family (nodewright always
// boots the family's latest AMI); other terms become the AMI selector.
func amiTerms(f *fields, spec *v1alpha1.EC2NodeClassSpec) {
	for _, t := range f.objects("amiSelectorTerms") {
		if alias, ok := t.str("alias"); ok {
			family, version, _ := strings.Cut(alias, "@")
			switch family {
			case "al2023":
				spec.AMIFamily = v1alpha1.AMIFamilyAL2023
			case "bottlerocket":
				spec.AMIFamily = v1alpha1.AMIFamilyBottlerocket
			default:
				t.warn("alias", "AMI family %s is not supported (al2023 or bottlerocket): nodes run AL2023", family)
			}
			if version != "" && version != "latest" {
				t.warn("alias", "AMI versions cannot be pinned: nodes boot the latest %s AMI, not %s", family, version)
			}
			t.done()
			continue
		}
		sel := &v1alpha1.AMISelector{Tags: t.stringMap("tags")}
		if id, ok := t.str("id"); ok {
			sel.IDs = []string{id}
		}
		sel.Name, _ = t.str("name")
		sel.Owner, _ = t.str("owner")
		t.drop("ssmParameter", "AMIs cannot be selected by SSM parameter: the term is dropped")
		t.done()
		switch {
		case sel.Tags == nil && sel.IDs == nil && sel.Name == "":
			if sel.Owner != "" {
				t.warn("owner", "an owner selects AMIs only with tags or a name: the term is dropped")
			}
		case spec.AMISelector == nil:
			spec.AMISelector = sel
		case len(sel.IDs) > 0 && len(spec.AMISelector.IDs) > 0:
			spec.AMISelector.IDs = append(spec.AMISelector.IDs, sel.IDs...)
		default:
			t.obj.warn(t.path, "nodewright has one AMI selector term (or a list of IDs): the term is dropped")
		}
	}
}
