package migrate

import (
	"time"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// provisionerV1alpha5 converts the spec of a karpenter.sh/v1alpha5 Provisioner. An inline
// provider becomes an EC2NodeClass of the Provisioner's name; a providerRef to an
// AWSNodeTemplate becomes a nodeClassRef to the EC2NodeClass of the template's name.
func (m *migration) provisionerV1alpha5(f *fields, p *v1alpha1.Provisioner) {
	p.Spec.Requirements = requirements(f, "requirements")
	p.Spec.Labels = labels(f, "labels")
	f.drop("annotations", "nodewright does not annotate the nodes it launches")
	p.Spec.Taints = taints(f, "taints")
	p.Spec.StartupTaints = taints(f, "startupTaints")
	if k := f.object("kubeletConfiguration"); k != nil {
		p.Spec.Kubelet = kubelet(k)
	}
	if l := f.object("limits"); l != nil {
		p.Spec.Limits = l.resources("resources")
		l.done()
	}
	p.Spec.TTLSecondsAfterEmpty = f.int64Ptr("ttlSecondsAfterEmpty")
	p.Spec.TTLSecondsUntilExpired = f.int64Ptr("ttlSecondsUntilExpired")
	p.Spec.Weight = f.int32Ptr("weight")
	if c := f.object("consolidation"); c != nil {
		if enabled := c.boolPtr("enabled"); enabled != nil && *enabled {
			c.warn("enabled", "consolidation of underutilized nodes is not supported: nodewright removes only empty nodes, after ttlSecondsAfterEmpty")
		}
		c.done()
	}

	p.Spec.NodeClassRef = v1alpha1.NodeClassReference{Name: p.Name}
	provider, ref := f.object("provider"), f.object("providerRef")
	switch {
	case provider != nil:
		nc := newNodeClass(f.obj, p.Name)
		provider.ignore("apiVersion", "kind") // the type of the raw extension, not configuration
		nodeClassV1alpha1(provider, &nc.Spec)
		provider.done()
		m.addNodeClass(f.obj, nc)
		if ref != nil {
			ref.obj.warn(ref.path, "both provider and providerRef are set: the provider is carried over")
		}
	case ref != nil:
		if name, ok := ref.str("name"); ok {
			p.Spec.NodeClassRef.Name = name
		}
		if kind, ok := ref.str("kind"); ok && kind != "AWSNodeTemplate" {
			ref.warn("kind", "only AWSNodeTemplates are migrated: the Provisioner references the EC2NodeClass %q", p.Spec.NodeClassRef.Name)
		}
		ref.ignore("apiVersion")
		ref.done()
	default:
		f.warn("provider", "missing: the Provisioner references the EC2NodeClass %q, which must be created", p.Name)
	}
	f.done()
}

// nodePoolV1 converts the spec of a karpenter.sh/v1 NodePool.
func (m *migration) nodePoolV1(f *fields, p *v1alpha1.Provisioner) {
	if t := f.object("template"); t != nil {
		if meta := t.object("metadata"); meta != nil {
			p.Spec.Labels = labels(meta, "labels")
			meta.drop("annotations", "nodewright does not annotate the nodes it launches")
			meta.done()
		}
		if s := t.object("spec"); s != nil {
			p.Spec.Requirements = requirements(s, "requirements")
			p.Spec.Taints = taints(s, "taints")
			p.Spec.StartupTaints = taints(s, "startupTaints")
			if ref := s.object("nodeClassRef"); ref != nil {
				p.Spec.NodeClassRef.Name, _ = ref.str("name")
				if kind, ok := ref.str("kind"); ok && kind != "EC2NodeClass" {
					ref.warn("kind", "only EC2NodeClasses are migrated: the Provisioner references the EC2NodeClass %q", p.Spec.NodeClassRef.Name)
				}
				ref.ignore("group")
				ref.done()
			} else {
				s.warn("nodeClassRef", "missing: set spec.nodeClassRef.name in the Provisioner")
			}
			p.Spec.TTLSecondsUntilExpired = seconds(s, "expireAfter")
			s.drop("terminationGracePeriod", "not supported: nodewright drains nodes until their pods are evicted, respecting PodDisruptionBudgets")
			s.done()
		}
		t.done()
	}
	m.disruptionV1(f, p)
	p.Spec.Limits = f.resources("limits")
	p.Spec.Weight = f.int32Ptr("weight")
	f.done()
}

// disruptionV1 converts a NodePool's disruption to ttlSecondsAfterEmpty. Absent fields take
// Karpenter's defaults: WhenEmptyOrUnderutilized after 0s.
func (m *migration) disruptionV1(f *fields, p *v1alpha1.Provisioner) {
	d := f.object("disruption")
	if d == nil {
		d = newFields(f.obj, f.at("disruption"), map[string]any{})
	}
	policy, ok := d.str("consolidationPolicy")
	if !ok {
		policy = "WhenEmptyOrUnderutilized"
	}
	after, hasAfter := d.m["consolidateAfter"]
	if !hasAfter || after == nil {
		d.m["consolidateAfter"] = "0s"
	}
	p.Spec.TTLSecondsAfterEmpty = seconds(d, "consolidateAfter")
	switch policy {
	case "WhenEmpty":
	case "WhenEmptyOrUnderutilized", "WhenUnderutilized":
		d.warn("consolidationPolicy", "%s: consolidation of underutilized nodes is not supported: nodewright removes only empty nodes, after ttlSecondsAfterEmpty", policy)
	default:
		d.warn("consolidationPolicy", "unknown policy %s: not carried over", policy)
	}
	d.drop("budgets", "disruption budgets are not supported: nodewright removes each empty node when its TTL passes")
	d.done()
}

// seconds converts a duration such as "720h" to seconds; "Never" is nil.
func seconds(f *fields, key string) *int64 {
	s, ok := f.str(key)
	if !ok || s == "Never" {
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		f.warn(key, "not a duration: not carried over")
		return nil
	}
	n := int64(d / time.Second)
	return &n
}
