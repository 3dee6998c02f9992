package migrate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// Input is a YAML stream of Karpenter objects: one or more documents, each an object or a
// List of objects.
type Input struct {
	// Name is where Data was read from, for warnings: a file name, or "-" for stdin.
	Name string
	// Data is the YAML.
	Data []byte
}

// Result is what Migrate made of its inputs.
type Result struct {
	// NodeClasses are the EC2NodeClasses, in the order of the Karpenter objects they came from.
	NodeClasses []*v1alpha1.EC2NodeClass
	// Provisioners are the Provisioners, in the order of the Karpenter objects they came from.
	Provisioners []*v1alpha1.Provisioner
	// Warnings are the fields of the inputs that the output does not carry, in input order.
	Warnings []Warning

	sources map[any]string // object -> "Kind/name in source", for the output's comments
}

// migration is the state of one Migrate call.
type migration struct {
	result  Result
	objects []*object
	// kubelets are the kubelet settings of v1 EC2NodeClasses by name: nodewright has them on
	// the Provisioner, so they go to every Provisioner that references the class.
	kubelets map[string]nodeClassKubelet
	// nodePools are the Provisioners made from v1 NodePools, which take those settings.
	nodePools []*v1alpha1.Provisioner
}

type nodeClassKubelet struct {
	kubelet *v1alpha1.KubeletConfiguration
	obj     *object
	path    string
	used    bool
}

// Migrate converts the Karpenter objects of inputs to nodewright's. It fails only on input it
// cannot read (YAML that does not parse, a document that is not an object, two outputs of the
// same kind and name); an object or field it cannot carry over is a Warning in the result.
func Migrate(inputs ...Input) (*Result, error) {
	m := &migration{kubelets: map[string]nodeClassKubelet{}}
	m.result.sources = map[any]string{}
	for _, in := range inputs {
		docs, err := splitYAML(in.Data)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", in.Name, err)
		}
		for _, doc := range docs {
			m.convert(in.Name, doc)
		}
	}
	for _, p := range m.nodePools {
		if k, ok := m.kubelets[p.Spec.NodeClassRef.Name]; ok {
			p.Spec.Kubelet = k.kubelet.DeepCopy()
			k.used = true
			m.kubelets[p.Spec.NodeClassRef.Name] = k
		}
	}
	for _, name := range sortedKeys(m.kubelets) {
		if k := m.kubelets[name]; !k.used {
			k.obj.warn(k.path, "nodewright has kubelet settings on the Provisioner, and no NodePool in the input references this EC2NodeClass: set spec.kubelet on its Provisioners")
		}
	}
	for _, o := range m.objects {
		m.result.Warnings = append(m.result.Warnings, o.warnings...)
	}
	if err := m.checkNames(); err != nil {
		return nil, err
	}
	return &m.result, nil
}

// splitYAML returns the documents of a YAML stream as JSON-decoded maps, with numbers kept as
// json.Number so integers stay exact; Lists are replaced by their items.
func splitYAML(data []byte) ([]map[string]any, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []map[string]any
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		jsonDoc, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if s := string(bytes.TrimSpace(jsonDoc)); s == "null" || s == "" {
			continue
		}
		decoder := json.NewDecoder(bytes.NewReader(jsonDoc))
		decoder.UseNumber()
		var obj map[string]any
		if err := decoder.Decode(&obj); err != nil {
			return nil, fmt.Errorf("a document is not an object: %w", err)
		}
		if kind, _ := obj["kind"].(string); strings.HasSuffix(kind, "List") {
			items, _ := obj["items"].([]any)
			for i, item := range items {
				m, ok := item.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("item %d of a %s is not an object", i, kind)
				}
				out = append(out, m)
			}
			continue
		}
		out = append(out, obj)
	}
}

// convert converts one Karpenter object.
func (m *migration) convert(source string, doc map[string]any) {
	apiVersion, _ := doc["apiVersion"].(string)
	kind, _ := doc["kind"].(string)
	name := ""
	if meta, ok := doc["metadata"].(map[string]any); ok {
		name, _ = meta["name"].(string)
	}
	obj := &object{source: source, name: kind + "/" + name}
	m.objects = append(m.objects, obj)
	f := newFields(obj, "", doc)
	meta := f.object("metadata")
	f.ignore("apiVersion", "kind", "status")
	spec := f.object("spec")
	if spec == nil {
		spec = newFields(obj, "spec", map[string]any{})
	}

	switch apiVersion + " " + kind {
	case "karpenter.sh/v1alpha5 Provisioner":
		p := newProvisioner(obj, meta)
		m.provisionerV1alpha5(spec, p)
		m.addProvisioner(obj, p)
	case "karpenter.sh/v1 NodePool":
		p := newProvisioner(obj, meta)
		m.nodePoolV1(spec, p)
		m.addProvisioner(obj, p)
		m.nodePools = append(m.nodePools, p)
	case "karpenter.k8s.aws/v1alpha1 AWSNodeTemplate":
		nc := newNodeClass(obj, name)
		setMetadata(meta, &nc.ObjectMeta)
		nodeClassV1alpha1(spec, &nc.Spec)
		spec.done()
		m.addNodeClass(obj, nc)
	case "karpenter.k8s.aws/v1 EC2NodeClass":
		nc := newNodeClass(obj, name)
		setMetadata(meta, &nc.ObjectMeta)
		if k := spec.object("kubelet"); k != nil {
			m.kubelets[name] = nodeClassKubelet{kubelet: kubelet(k), obj: obj, path: k.path}
		}
		nodeClassV1(spec, &nc.Spec)
		spec.done()
		m.addNodeClass(obj, nc)
	default:
		obj.warn("apiVersion", "%s %s is not migrated (only karpenter.sh/v1alpha5 Provisioner, karpenter.k8s.aws/v1alpha1 AWSNodeTemplate, karpenter.sh/v1 NodePool and karpenter.k8s.aws/v1 EC2NodeClass are): the object is skipped", apiVersion, kind)
		return
	}
	f.done()
}

func newProvisioner(obj *object, meta *fields) *v1alpha1.Provisioner {
	p := &v1alpha1.Provisioner{TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "Provisioner"}}
	setMetadata(meta, &p.ObjectMeta)
	if p.Name == "" {
		obj.warn("metadata.name", "missing: the Provisioner has no name")
	}
	return p
}

func newNodeClass(obj *object, name string) *v1alpha1.EC2NodeClass {
	if name == "" {
		obj.warn("metadata.name", "missing: the EC2NodeClass has no name")
	}
	return &v1alpha1.EC2NodeClass{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "EC2NodeClass"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}
}

// setMetadata carries the name, labels and annotations of a Karpenter object over. What the
// apiserver and Karpenter's controllers set is left out without a warning: it is state, not
// configuration.
func setMetadata(meta *fields, out *metav1.ObjectMeta) {
	if meta == nil {
		return
	}
	out.Name, _ = meta.str("name")
	out.Labels = meta.stringMap("labels")
	if annotations := meta.stringMap("annotations"); annotations != nil {
		for _, k := range sortedKeys(annotations) {
			v := annotations[k]
			domain, _, _ := strings.Cut(k, "/")
			if k == "kubectl.kubernetes.io/last-applied-configuration" || strings.HasSuffix(domain, "karpenter.sh") || strings.HasSuffix(domain, "karpenter.k8s.aws") {
				continue
			}
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[k] = v
		}
	}
	meta.ignore("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
		"deletionGracePeriodSeconds", "managedFields", "selfLink", "finalizers", "namespace")
	meta.done()
}

func (m *migration) addProvisioner(obj *object, p *v1alpha1.Provisioner) {
	m.result.Provisioners = append(m.result.Provisioners, p)
	m.result.sources[p] = obj.name + " in " + obj.source
}

func (m *migration) addNodeClass(obj *object, nc *v1alpha1.EC2NodeClass) {
	m.result.NodeClasses = append(m.result.NodeClasses, nc)
	m.result.sources[nc] = obj.name + " in " + obj.source
}

// checkNames fails on two outputs of the same kind and name, which would overwrite each other.
func (m *migration) checkNames() error {
	seen := map[string]string{}
	check := func(kind, name, source string) error {
		key := kind + "/" + name
		if first, ok := seen[key]; ok {
			return fmt.Errorf("%s would be made twice: from %s and from %s; rename one", key, first, source)
		}
		seen[key] = source
		return nil
	}
	for _, nc := range m.result.NodeClasses {
		if err := check("EC2NodeClass", nc.Name, m.result.sources[nc]); err != nil {
			return err
		}
	}
	for _, p := range m.result.Provisioners {
		if err := check("Provisioner", p.Name, m.result.sources[p]); err != nil {
			return err
		}
	}
	return nil
}

// WriteYAML writes the EC2NodeClasses, then the Provisioners, as a multi-document YAML stream,
// each under a comment naming the Karpenter object it came from.
func (r *Result) WriteYAML(w io.Writer) error {
	var objs []any
	for _, nc := range r.NodeClasses {
		objs = append(objs, nc)
	}
	for _, p := range r.Provisioners {
		objs = append(objs, p)
	}
	var buf bytes.Buffer
	for i, obj := range objs {
		data, err := yaml.Marshal(obj)
		if err != nil {
			return fmt.Errorf("encoding YAML: %w", err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		if source, ok := r.sources[obj]; ok {
			fmt.Fprintf(&buf, "# Migrated from %s\n", source)
		}
		buf.Write(data)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
