package emulator

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kubeletapis "k8s.io/kubelet/pkg/apis"
	"sigs.k8s.io/yaml"
)

// nodeConfigContentType is the MIME type of nodeadm's NodeConfig parts.
const nodeConfigContentType = "application/node.eks.aws"

// registration is what a kubelet configured by the user data registers its Node with.
type registration struct {
	labels         map[string]string
	taints         []corev1.Taint
	maxPods        int // 0: the catalog's
	kubeReserved   corev1.ResourceList
	systemReserved corev1.ResourceList
	evictionHard   map[string]string
}

// nodeConfig is nodeadm's NodeConfig, the fields the emulator reads; the rest of spec is
// accepted as nodeadm accepts it.
type nodeConfig struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata,omitempty"`
	Spec       struct {
		Cluster struct {
			Name                 string `json:"name"`
			APIServerEndpoint    string `json:"apiServerEndpoint"`
			CertificateAuthority string `json:"certificateAuthority"`
			CIDR                 string `json:"cidr"`
			ID                   string `json:"id,omitempty"`
			EnableOutpost        *bool  `json:"enableOutpost,omitempty"`
		} `json:"cluster"`
		Kubelet struct {
			Config map[string]any `json:"config,omitempty"`
			Flags  []string       `json:"flags,omitempty"`
		} `json:"kubelet"`
		Containerd   map[string]any  `json:"containerd,omitempty"`
		Instance     map[string]any  `json:"instance,omitempty"`
		FeatureGates map[string]bool `json:"featureGates,omitempty"`
	} `json:"spec"`
}

// parseUserData reads the registration from AL2023 nodeadm user data: a MIME multipart
// document whose application/node.eks.aws parts hold NodeConfig YAML, or a bare NodeConfig
// (see the package doc for the exact format). Anything nodeadm or the kubelet would reject is
// an error: such an instance never joins.
func parseUserData(userData string) (*registration, error) {
	var docs [][]byte
	var err error
	trimmed := strings.TrimLeft(userData, " \t\r\n")
	mimeDocument := strings.HasPrefix(trimmed, "MIME-Version:") || strings.HasPrefix(strings.ToLower(trimmed), "content-type:")
	switch {
	case trimmed == "":
		return nil, errors.New("the user data is empty: nodeadm needs a NodeConfig to join the cluster")
	case mimeDocument:
		docs, err = nodeConfigParts(trimmed)
	default:
		docs, err = yamlDocuments([]byte(trimmed))
	}
	if err != nil {
		return nil, err
	}
	var configs []nodeConfig
	for _, doc := range docs {
		var nc nodeConfig
		if err := yaml.UnmarshalStrict(doc, &nc); err != nil {
			if !mimeDocument {
				return nil, fmt.Errorf("the user data is neither MIME multipart nor a NodeConfig document (the emulator reads only AL2023 nodeadm user data): %w", err)
			}
			return nil, fmt.Errorf("decoding a NodeConfig: %w", err)
		}
		if nc.Kind != "NodeConfig" || (nc.APIVersion != "node.eks.aws/v1alpha1" && nc.APIVersion != "node.eks.aws/v1beta1") {
			return nil, fmt.Errorf("a document of kind %q, apiVersion %q is not a node.eks.aws NodeConfig", nc.Kind, nc.APIVersion)
		}
		configs = append(configs, nc)
	}
	if len(configs) == 0 {
		return nil, errors.New("the user data holds no NodeConfig")
	}
	return registrationFrom(mergeNodeConfigs(configs))
}

// nodeConfigParts returns the YAML documents of the NodeConfig parts of a MIME multipart
// user data; other parts (shell scripts, cloud-config) are what the kubelet never sees.
func nodeConfigParts(userData string) ([][]byte, error) {
	r := textproto.NewReader(bufio.NewReader(strings.NewReader(userData)))
	header, err := r.ReadMIMEHeader()
	if err != nil {
		return nil, fmt.Errorf("reading the MIME headers of the user data: %w", err)
	}
	mediaType, ps, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mediaType, "multipart/") || ps["boundary"] == "" {
		return nil, fmt.Errorf("the user data's Content-Type %q is not multipart with a boundary", header.Get("Content-Type"))
	}
	mr := multipart.NewReader(r.R, ps["boundary"])
	var docs [][]byte
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading a MIME part of the user data: %w", err)
		}
		partType, _, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil {
			return nil, fmt.Errorf("a MIME part has Content-Type %q: %w", part.Header.Get("Content-Type"), err)
		}
		body, err := io.ReadAll(part)
		if err != nil {
			return nil, fmt.Errorf("reading a MIME part of the user data: %w", err)
		}
		if partType != nodeConfigContentType {
			continue
		}
		if strings.EqualFold(part.Header.Get("Content-Transfer-Encoding"), "base64") {
			if body, err = base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(body), nil))); err != nil {
				return nil, fmt.Errorf("decoding a base64 NodeConfig part: %w", err)
			}
		}
		partDocs, err := yamlDocuments(body)
		if err != nil {
			return nil, err
		}
		docs = append(docs, partDocs...)
	}
	return docs, nil
}

// yamlDocuments splits a YAML stream into its non-empty documents.
func yamlDocuments(data []byte) ([][]byte, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading YAML documents: %w", err)
		}
		if len(bytes.TrimSpace(doc)) > 0 && string(bytes.TrimSpace(doc)) != "---" {
			docs = append(docs, doc)
		}
	}
}

// mergeNodeConfigs merges NodeConfigs as nodeadm does: later documents win for each cluster
// field and kubelet config key, and kubelet flags accumulate in order.
func mergeNodeConfigs(configs []nodeConfig) nodeConfig {
	out := configs[0]
	out.Spec.Kubelet.Config = map[string]any{}
	out.Spec.Kubelet.Flags = nil
	for _, nc := range configs {
		c := &out.Spec.Cluster
		c.Name = orDefault(nc.Spec.Cluster.Name, c.Name)
		c.APIServerEndpoint = orDefault(nc.Spec.Cluster.APIServerEndpoint, c.APIServerEndpoint)
		c.CertificateAuthority = orDefault(nc.Spec.Cluster.CertificateAuthority, c.CertificateAuthority)
		c.CIDR = orDefault(nc.Spec.Cluster.CIDR, c.CIDR)
		for k, v := range nc.Spec.Kubelet.Config {
			out.Spec.Kubelet.Config[k] = v
		}
		out.Spec.Kubelet.Flags = append(out.Spec.Kubelet.Flags, nc.Spec.Kubelet.Flags...)
	}
	return out
}

// registrationFrom validates the merged NodeConfig as nodeadm does and reads the kubelet
// settings: the kubelet config first, then the flags, which win as on the kubelet's command line.
func registrationFrom(nc nodeConfig) (*registration, error) {
	c := nc.Spec.Cluster
	for _, missing := range []struct{ value, what string }{
		{c.Name, "Name"}, {c.APIServerEndpoint, "Apiserver endpoint"}, {c.CertificateAuthority, "Certificate authority"}, {c.CIDR, "CIDR"},
	} {
		if missing.value == "" {
			return nil, fmt.Errorf("%s is missing in cluster configuration", missing.what)
		}
	}
	reg := &registration{labels: map[string]string{}}
	if err := reg.applyKubeletConfig(nc.Spec.Kubelet.Config); err != nil {
		return nil, err
	}
	flags := nc.Spec.Kubelet.Flags
	for i := 0; i < len(flags); i++ {
		name, value, hasValue := strings.Cut(flags[i], "=")
		if !hasValue && i+1 < len(flags) && !strings.HasPrefix(flags[i+1], "-") {
			value = flags[i+1]
			i++
		}
		if err := reg.applyFlag(strings.TrimLeft(name, "-"), value); err != nil {
			return nil, fmt.Errorf("kubelet flag %s: %w", name, err)
		}
	}
	for signal, threshold := range reg.evictionHard {
		if err := validThreshold(threshold); err != nil {
			return nil, fmt.Errorf("eviction threshold %s: %w", signal, err)
		}
	}
	return reg, nil
}

// validThreshold accepts what the kubelet accepts as a hard eviction threshold: a quantity or
// a percentage.
func validThreshold(threshold string) error {
	if pct, ok := strings.CutSuffix(threshold, "%"); ok {
		f, err := strconv.ParseFloat(pct, 64)
		if err != nil || f < 0 || f > 100 {
			return fmt.Errorf("%q is not a percentage", threshold)
		}
		return nil
	}
	if _, err := resource.ParseQuantity(threshold); err != nil {
		return fmt.Errorf("%q is not a quantity or a percentage", threshold)
	}
	return nil
}

func (reg *registration) applyKubeletConfig(config map[string]any) error {
	if v, ok := config["maxPods"]; ok {
		n, ok := v.(float64)
		if !ok || n < 1 || n != float64(int(n)) {
			return fmt.Errorf("kubelet config maxPods %v is not a positive integer", v)
		}
		reg.maxPods = int(n)
	}
	var err error
	if reg.kubeReserved, err = configResources(config, "kubeReserved"); err != nil {
		return err
	}
	if reg.systemReserved, err = configResources(config, "systemReserved"); err != nil {
		return err
	}
	if v, ok := config["evictionHard"]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("kubelet config evictionHard is not a map")
		}
		reg.evictionHard = map[string]string{}
		for k, t := range m {
			reg.evictionHard[k] = fmt.Sprint(t)
		}
	}
	if v, ok := config["registerWithTaints"]; ok {
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("kubelet config registerWithTaints is not a list")
		}
		for _, item := range list {
			m, _ := item.(map[string]any)
			key, _ := m["key"].(string)
			value, _ := m["value"].(string)
			effect, _ := m["effect"].(string)
			taint, err := validTaint(key, value, effect)
			if err != nil {
				return fmt.Errorf("kubelet config registerWithTaints: %w", err)
			}
			reg.taints = append(reg.taints, taint)
		}
	}
	return nil
}

func configResources(config map[string]any, key string) (corev1.ResourceList, error) {
	v, ok := config[key]
	if !ok {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("kubelet config %s is not a map", key)
	}
	out := corev1.ResourceList{}
	for name, q := range m {
		parsed, err := resource.ParseQuantity(fmt.Sprint(q))
		if err != nil {
			return nil, fmt.Errorf("kubelet config %s.%s: %w", key, name, err)
		}
		out[corev1.ResourceName(name)] = parsed
	}
	return out, nil
}

// applyFlag applies one kubelet flag; flags the emulator does not model are ignored.
func (reg *registration) applyFlag(name, value string) error {
	switch name {
	case "node-labels":
		for _, kv := range splitList(value) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("%q is not key=value", kv)
			}
			if err := validLabel(k, v); err != nil {
				return err
			}
			reg.labels[k] = v
		}
	case "register-with-taints":
		for _, spec := range splitList(value) {
			kv, effect, ok := strings.Cut(spec, ":")
			if !ok {
				return fmt.Errorf("taint %q has no effect", spec)
			}
			k, v, _ := strings.Cut(kv, "=")
			taint, err := validTaint(k, v, effect)
			if err != nil {
				return err
			}
			reg.taints = append(reg.taints, taint)
		}
	case "max-pods":
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive integer", value)
		}
		reg.maxPods = n
	case "kube-reserved", "system-reserved":
		list := corev1.ResourceList{}
		for _, kv := range splitList(value) {
			k, v, ok := strings.Cut(kv, "=")
			q, err := resource.ParseQuantity(v)
			if !ok || err != nil {
				return fmt.Errorf("%q is not resource=quantity", kv)
			}
			list[corev1.ResourceName(k)] = q
		}
		if name == "kube-reserved" {
			reg.kubeReserved = list
		} else {
			reg.systemReserved = list
		}
	case "eviction-hard":
		reg.evictionHard = map[string]string{}
		for _, kv := range splitList(value) {
			k, v, ok := strings.Cut(kv, "<")
			if !ok {
				return fmt.Errorf("%q is not signal<threshold", kv)
			}
			reg.evictionHard[k] = v
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// validLabel applies the kubelet's checks on --node-labels: a valid label, and in the
// kubernetes.io and k8s.io namespaces only the labels a kubelet may set itself.
func validLabel(key, value string) error {
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		return fmt.Errorf("label key %q: %s", key, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(value); len(errs) > 0 {
		return fmt.Errorf("label %q value %q: %s", key, value, strings.Join(errs, "; "))
	}
	namespace, _, _ := strings.Cut(key, "/")
	if !strings.Contains(key, "/") {
		namespace = ""
	}
	restricted := slices.ContainsFunc([]string{"kubernetes.io", "k8s.io"}, func(ns string) bool {
		return namespace == ns || strings.HasSuffix(namespace, "."+ns)
	})
	if restricted && !kubeletapis.IsKubeletLabel(key) {
		return fmt.Errorf("unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [%s]", key)
	}
	return nil
}

func validTaint(key, value, effect string) (corev1.Taint, error) {
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		return corev1.Taint{}, fmt.Errorf("taint key %q: %s", key, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(value); len(errs) > 0 {
		return corev1.Taint{}, fmt.Errorf("taint %q value %q: %s", key, value, strings.Join(errs, "; "))
	}
	switch e := corev1.TaintEffect(effect); e {
	case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		return corev1.Taint{Key: key, Value: value, Effect: e}, nil
	}
	return corev1.Taint{}, fmt.Errorf("taint %q has invalid effect %q", key, effect)
}
