package aws

import (
	"bufio"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// userDataBoundary separates the MIME parts of AL2023 user data.
const userDataBoundary = "//"

// nodeSettings are what a node's user data configures: the cluster it joins and the kubelet's
// labels, taints and settings.
type nodeSettings struct {
	clusterName, endpoint, ca, cidr string
	labels                          map[string]string
	// taints are the taints and startup taints, registered with the node.
	taints  []corev1.Taint
	kubelet *v1alpha1.KubeletConfiguration
	// custom is the node class's own user data, if any.
	custom *string
}

// userData renders the user data of the AMI family: AL2023 nodeadm MIME multipart,
// Bottlerocket TOML, or the node class's own for Custom.
func userData(family v1alpha1.AMIFamily, s nodeSettings) (string, error) {
	switch family {
	case v1alpha1.AMIFamilyCustom:
		if s.custom == nil {
			return "", nil
		}
		return *s.custom, nil
	case v1alpha1.AMIFamilyBottlerocket:
		return bottlerocketUserData(s), nil
	}
	return al2023UserData(s)
}

// nodeConfig is nodeadm's NodeConfig (node.eks.aws/v1alpha1), the fields nodewright sets.
type nodeConfig struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Spec       nodeConfigSpec `json:"spec"`
}

type nodeConfigSpec struct {
	Cluster struct {
		Name                 string `json:"name"`
		APIServerEndpoint    string `json:"apiServerEndpoint"`
		CertificateAuthority string `json:"certificateAuthority"`
		CIDR                 string `json:"cidr"`
	} `json:"cluster"`
	Kubelet struct {
		Config map[string]any `json:"config,omitempty"`
		Flags  []string       `json:"flags,omitempty"`
	} `json:"kubelet"`
}

// al2023UserData renders a MIME multipart document: the node class's own user data first
// (its parts, a NodeConfig or a shell script), then nodewright's NodeConfig, which nodeadm
// merges last so that its cluster and kubelet settings win. The kubelet gets the labels with
// --node-labels, the taints with --register-with-taints, and maxPods, podsPerCore,
// clusterDNS, kubeReserved, systemReserved (nodewright's defaults included, so the node
// matches the allocatable computed in overhead.go) and evictionHard in its config.
func al2023UserData(s nodeSettings) (string, error) {
	nc := nodeConfig{APIVersion: "node.eks.aws/v1alpha1", Kind: "NodeConfig"}
	nc.Spec.Cluster.Name = s.clusterName
	nc.Spec.Cluster.APIServerEndpoint = s.endpoint
	nc.Spec.Cluster.CertificateAuthority = s.ca
	nc.Spec.Cluster.CIDR = s.cidr
	nc.Spec.Kubelet.Config = kubeletConfig(s.kubelet)
	if len(s.labels) > 0 {
		nc.Spec.Kubelet.Flags = append(nc.Spec.Kubelet.Flags, "--node-labels="+labelsFlag(s.labels))
	}
	if len(s.taints) > 0 {
		nc.Spec.Kubelet.Flags = append(nc.Spec.Kubelet.Flags, "--register-with-taints="+taintsFlag(s.taints))
	}
	doc, err := yaml.Marshal(nc)
	if err != nil {
		return "", fmt.Errorf("encoding the NodeConfig: %w", err)
	}
	var parts []mimePart
	if s.custom != nil && strings.TrimSpace(*s.custom) != "" {
		if parts, err = customParts(*s.custom); err != nil {
			return "", err
		}
	}
	parts = append(parts, mimePart{contentType: "application/node.eks.aws", body: string(doc)})
	var b strings.Builder
	b.WriteString("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"" + userDataBoundary + "\"\n\n")
	for _, p := range parts {
		b.WriteString("--" + userDataBoundary + "\nContent-Type: " + p.contentType + "\n\n")
		b.WriteString(strings.TrimRight(p.body, "\n") + "\n\n")
	}
	b.WriteString("--" + userDataBoundary + "--\n")
	return b.String(), nil
}

// kubeletConfig is the kubelet configuration nodeadm writes: the Provisioner's settings and
// nodewright's default system-reserved resources.
func kubeletConfig(k *v1alpha1.KubeletConfiguration) map[string]any {
	systemReserved := defaultSystemReserved.DeepCopy()
	config := map[string]any{}
	if k != nil {
		if k.MaxPods != nil {
			config["maxPods"] = *k.MaxPods
		}
		if k.PodsPerCore != nil && *k.PodsPerCore > 0 {
			config["podsPerCore"] = *k.PodsPerCore
		}
		if len(k.ClusterDNS) > 0 {
			config["clusterDNS"] = k.ClusterDNS
		}
		if len(k.KubeReserved) > 0 {
			config["kubeReserved"] = quantities(k.KubeReserved)
		}
		for name, q := range k.SystemReserved {
			systemReserved[name] = q
		}
		if len(k.EvictionHard) > 0 {
			eviction := map[string]string{}
			for signal, t := range k.EvictionHard {
				eviction[signal] = string(t)
			}
			config["evictionHard"] = eviction
		}
	}
	config["systemReserved"] = quantities(systemReserved)
	return config
}

func quantities(list corev1.ResourceList) map[string]string {
	out := map[string]string{}
	for name, q := range list {
		out[string(name)] = q.String()
	}
	return out
}

// labelsFlag renders labels as --node-labels takes them: k=v,... sorted by key.
func labelsFlag(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		out = append(out, k+"="+labels[k])
	}
	return strings.Join(out, ",")
}

// taintsFlag renders taints as --register-with-taints takes them: k=v:Effect or k:Effect.
func taintsFlag(taints []corev1.Taint) string {
	var out []string
	for _, t := range taints {
		kv := t.Key
		if t.Value != "" {
			kv += "=" + t.Value
		}
		out = append(out, kv+":"+string(t.Effect))
	}
	return strings.Join(out, ",")
}

type mimePart struct {
	contentType, body string
}

// customParts splits the node class's user data into MIME parts: the parts of a MIME
// multipart document, or one part, a NodeConfig or else a shell script.
func customParts(custom string) ([]mimePart, error) {
	trimmed := strings.TrimLeft(custom, " \t\r\n")
	if !strings.HasPrefix(trimmed, "MIME-Version:") {
		contentType := "text/x-shellscript; charset=\"us-ascii\""
		if strings.Contains(trimmed, "kind: NodeConfig") {
			contentType = "application/node.eks.aws"
		}
		return []mimePart{{contentType: contentType, body: custom}}, nil
	}
	r := textproto.NewReader(bufio.NewReader(strings.NewReader(trimmed)))
	header, err := r.ReadMIMEHeader()
	if err != nil {
		return nil, fmt.Errorf("reading the node class's user data MIME headers: %w", err)
	}
	_, params, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		return nil, fmt.Errorf("the node class's user data is MIME without a multipart boundary")
	}
	mr := multipart.NewReader(r.R, params["boundary"])
	var parts []mimePart
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return parts, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the node class's user data: %w", err)
		}
		body, err := io.ReadAll(part)
		if err != nil {
			return nil, fmt.Errorf("reading the node class's user data: %w", err)
		}
		parts = append(parts, mimePart{contentType: part.Header.Get("Content-Type"), body: string(body)})
	}
}

// bottlerocketUserData renders Bottlerocket's TOML settings; the node class's own TOML, if
// any, comes first and must not set the settings.kubernetes tables nodewright writes.
func bottlerocketUserData(s nodeSettings) string {
	var b strings.Builder
	if s.custom != nil && strings.TrimSpace(*s.custom) != "" {
		b.WriteString(strings.TrimRight(*s.custom, "\n") + "\n\n")
	}
	b.WriteString("[settings.kubernetes]\n")
	fmt.Fprintf(&b, "cluster-name = %s\napi-server = %s\ncluster-certificate = %s\n", strconv.Quote(s.clusterName), strconv.Quote(s.endpoint), strconv.Quote(s.ca))
	if k := s.kubelet; k != nil {
		if k.MaxPods != nil {
			fmt.Fprintf(&b, "max-pods = %d\n", *k.MaxPods)
		}
		if len(k.ClusterDNS) > 0 {
			fmt.Fprintf(&b, "cluster-dns-ip = %s\n", strconv.Quote(k.ClusterDNS[0]))
		}
	}
	if len(s.labels) > 0 {
		b.WriteString("\n[settings.kubernetes.node-labels]\n")
		keys := make([]string, 0, len(s.labels))
		for k := range s.labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s = %s\n", strconv.Quote(k), strconv.Quote(s.labels[k]))
		}
	}
	if len(s.taints) > 0 {
		b.WriteString("\n[settings.kubernetes.node-taints]\n")
		byKey := map[string][]string{}
		var keys []string
		for _, t := range s.taints {
			if _, ok := byKey[t.Key]; !ok {
				keys = append(keys, t.Key)
			}
			byKey[t.Key] = append(byKey[t.Key], strconv.Quote(t.Value+":"+string(t.Effect)))
		}
		for _, k := range keys {
			fmt.Fprintf(&b, "%s = [%s]\n", strconv.Quote(k), strings.Join(byKey[k], ", "))
		}
	}
	return b.String()
}
