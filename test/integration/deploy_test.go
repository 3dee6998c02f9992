package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/kubernetes/test/utils/ktesting"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/nodewright/nodewright/pkg/plugins/provision"
	"github.com/nodewright/nodewright/test/integration/framework"
)

// The tests here check nodewright's two installations, the kustomization in manifests/ and
// the Helm chart in charts/nodewright: both render, the sandbox's kube-apiserver accepts
// every object they render (server-side dry run, strict field validation), and they grant
// the same permissions and configure the scheduler the same way.

// releaseName is the Helm release the tests render; the chart's objects are then named as
// the kustomization's are.
const releaseName = "nodewright"

// TestKustomizeManifestsAccepted renders manifests/ with kubectl kustomize and applies
// every object to the sandbox with a server-side dry run.
func TestKustomizeManifestsAccepted(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	objs := framework.DecodeObjects(t, kustomize(t))
	assertKinds(t, objs, "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
		"Role", "RoleBinding", "ConfigMap", "Deployment", "PodDisruptionBudget", "Service")
	framework.DryRunApply(ctx, t, objs)
}

// TestHelmChartLintsAndIsAccepted lints the chart and applies what it renders, CRDs
// included, to the sandbox with a server-side dry run: once in kube-system, the namespace
// the documentation installs it in, and once in a namespace of its own.
func TestHelmChartLintsAndIsAccepted(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	if out, err := helm(t, append([]string{"lint", chartDir(t), "--strict", "--kube-version", kubeVersion(t)}, validValues(t)...)...); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
	kubeSystem := framework.DecodeObjects(t, renderChart(t, "kube-system"))
	assertKinds(t, kubeSystem, "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
		"Role", "RoleBinding", "ConfigMap", "Deployment", "PodDisruptionBudget", "Service")
	framework.DryRunApply(ctx, t, kubeSystem)

	ns := framework.Namespace(ctx, t, framework.Client(t))
	framework.DryRunApply(ctx, t, framework.DecodeObjects(t, renderChart(t, ns)))
}

// TestHelmChartRejectsBadValues checks that helm template and helm lint refuse values the
// scheduler could not run with, naming the value.
func TestHelmChartRejectsBadValues(t *testing.T) {
	valid := validValues(t)
	without := func(name string) []string {
		var out []string
		for i := 0; i < len(valid); i += 2 {
			if !strings.HasPrefix(valid[i+1], name+"=") {
				out = append(out, valid[i], valid[i+1])
			}
		}
		return out
	}
	// with replaces a value of valid (helm applies --set-string after --set, whatever the order).
	with := func(name, value string) []string { return append(without(name), "--set", name+"="+value) }
	for _, tc := range []struct {
		name string
		args []string
		// want are what the error must say; the first names the value.
		want []string
	}{
		{name: "missing clusterName", args: without("clusterName"), want: []string{"clusterName is required"}},
		{name: "missing clusterEndpoint", args: without("clusterEndpoint"), want: []string{"clusterEndpoint is required"}},
		{name: "missing region", args: without("aws.region"), want: []string{"aws.region is required"}},
		{name: "replicas not a number", args: with("replicas", "two"), want: []string{"/replicas", "want integer"}},
		{name: "http endpoint", args: with("clusterEndpoint", "http://example.com"), want: []string{"/clusterEndpoint"}},
		{name: "region not a region", args: with("aws.region", "Virginia"), want: []string{"/aws/region"}},
		{name: "misspelt value", args: with("replica", "3"), want: []string{"additional properties 'replica' not allowed"}},
		{name: "bad pull policy", args: with("image.pullPolicy", "Sometimes"), want: []string{"/image/pullPolicy"}},
		{name: "feature gate without a value", args: with("featureGates", "GenericWorkload"), want: []string{"/featureGates"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, command := range [][]string{
				{"template", releaseName, chartDir(t), "--namespace", "kube-system", "--kube-version", kubeVersion(t)},
				{"lint", chartDir(t), "--strict", "--kube-version", kubeVersion(t)},
			} {
				if command[0] == "lint" && strings.HasPrefix(tc.name, "missing") {
					// helm lint reports a missing required value as [INFO] only.
					continue
				}
				out, err := helm(t, append(command, tc.args...)...)
				if err == nil {
					t.Errorf("helm %s succeeded; want an error saying %q", command[0], tc.want)
					continue
				}
				for _, want := range tc.want {
					if !strings.Contains(out, want) {
						t.Errorf("helm %s: output does not say %q:\n%s", command[0], want, out)
					}
				}
			}
		})
	}
}

// TestHelmChartAndKustomizeAgree checks that the two installations grant the same
// permissions to the same ServiceAccount, run the same container and configure the
// scheduler the same way (the chart with the values of manifests/scheduler-config.yaml),
// and that the configuration they ship is one the Provision plugin accepts.
func TestHelmChartAndKustomizeAgree(t *testing.T) {
	chart := framework.DecodeObjects(t, renderChart(t, "kube-system"))
	kust := framework.DecodeObjects(t, kustomize(t))

	if diff := cmp.Diff(grants(t, kust), grants(t, chart)); diff != "" {
		t.Errorf("RBAC grants (-kustomize, +chart):\n%s", diff)
	}

	kustConfig, chartConfig := schedulerConfigOf(t, kust), schedulerConfigOf(t, chart)
	if diff := cmp.Diff(kustConfig, chartConfig); diff != "" {
		t.Errorf("KubeSchedulerConfiguration (-kustomize, +chart):\n%s", diff)
	}
	validateProvisionArgs(t, chartConfig)

	kustPod, chartPod := podSpecOf(t, kust), podSpecOf(t, chart)
	for _, field := range []string{"serviceAccountName", "priorityClassName", "securityContext", "nodeSelector", "tolerations"} {
		if diff := cmp.Diff(kustPod[field], chartPod[field]); diff != "" {
			t.Errorf("pod spec %s (-kustomize, +chart):\n%s", field, diff)
		}
	}
	kustContainers, chartContainers := kustPod["containers"].([]any), chartPod["containers"].([]any)
	if len(kustContainers) != 1 || len(chartContainers) != 1 {
		t.Fatalf("containers: kustomize has %d, the chart %d; want 1 each", len(kustContainers), len(chartContainers))
	}
	kc, cc := kustContainers[0].(map[string]any), chartContainers[0].(map[string]any)
	// The image is the one difference: the chart's tag is its appVersion.
	delete(kc, "image")
	delete(cc, "image")
	if diff := cmp.Diff(kc, cc); diff != "" {
		t.Errorf("container (-kustomize, +chart):\n%s", diff)
	}
}

// TestChartCRDsMatchManifests fails when the chart's copies of the CRDs differ from the ones
// `make generate` writes to manifests/crds, or when the kustomization misses one.
func TestChartCRDsMatchManifests(t *testing.T) {
	root := framework.RepoRoot(t)
	generated, err := filepath.Glob(filepath.Join(root, "manifests", "crds", "*.yaml"))
	if err != nil || len(generated) == 0 {
		t.Fatalf("no CRDs in manifests/crds: %v", err)
	}
	copies, err := filepath.Glob(filepath.Join(chartDir(t), "crds", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	names := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			out = append(out, filepath.Base(p))
		}
		return out
	}
	if diff := cmp.Diff(names(generated), names(copies)); diff != "" {
		t.Fatalf("CRD files (-manifests/crds, +charts/nodewright/crds); run cp manifests/crds/*.yaml charts/nodewright/crds/:\n%s", diff)
	}
	for _, path := range generated {
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(chartDir(t), "crds", filepath.Base(path)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want, got) {
			t.Errorf("charts/nodewright/crds/%s differs from manifests/crds; run cp manifests/crds/*.yaml charts/nodewright/crds/", filepath.Base(path))
		}
	}

	data, err := os.ReadFile(filepath.Join(root, "manifests", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var kustomization struct {
		Resources []string `json:"resources"`
	}
	if err := sigsyaml.Unmarshal(data, &kustomization); err != nil {
		t.Fatal(err)
	}
	for _, name := range names(generated) {
		if !slices.Contains(kustomization.Resources, "crds/"+name) {
			t.Errorf("manifests/kustomization.yaml does not list crds/%s", name)
		}
	}
}

// chartDir is charts/nodewright.
func chartDir(t *testing.T) string {
	return filepath.Join(framework.RepoRoot(t), "charts", "nodewright")
}

// helmCommand is bin/helm with args, isolated from the user's helm configuration,
// repositories and cache (the chart has no dependencies).
func helmCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(framework.Binary(t, "helm"), args...)
	dir := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+dir, "HELM_CACHE_HOME="+dir, "HELM_DATA_HOME="+dir)
	return cmd
}

// helm runs bin/helm and returns its combined output.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := helmCommand(t, args...).CombinedOutput()
	return string(out), err
}

// renderChart renders the chart, CRDs included, into namespace with validValues.
func renderChart(t *testing.T, namespace string) []byte {
	t.Helper()
	cmd := helmCommand(t, append([]string{"template", releaseName, chartDir(t), "--namespace", namespace, "--include-crds",
		"--kube-version", kubeVersion(t)}, validValues(t)...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr.String())
	}
	return out
}

// kustomize renders manifests/ with kubectl kustomize.
func kustomize(t *testing.T) []byte {
	t.Helper()
	cmd := exec.Command(framework.Binary(t, "kubectl"), "kustomize", filepath.Join(framework.RepoRoot(t), "manifests"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, stderr.String())
	}
	return out
}

// kubeVersion is the sandbox's Kubernetes version, which helm renders for.
func kubeVersion(t *testing.T) string {
	t.Helper()
	v, err := framework.Client(t).Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("getting the server version: %v", err)
	}
	return v.GitVersion
}

// validValues are --set flags with the Provision plugin's args of
// manifests/scheduler-config.yaml, so that the chart renders the configuration the
// kustomization ships.
func validValues(t *testing.T) []string {
	t.Helper()
	args := provisionArgs(t, shippedSchedulerConfig(t))
	set := func(name, value string) []string { return []string{"--set-string", name + "=" + value} }
	var out []string
	for _, kv := range [][2]string{
		{"clusterName", args.ClusterName},
		{"aws.region", args.Region},
		{"clusterEndpoint", args.ClusterEndpoint},
		{"clusterCA", args.ClusterCA},
		{"clusterCIDR", args.ClusterCIDR},
		{"kubernetesVersion", args.KubernetesVersion},
		{"batch.idleDuration", args.BatchIdleDuration.Duration.String()},
		{"batch.maxDuration", args.BatchMaxDuration.Duration.String()},
	} {
		out = append(out, set(kv[0], kv[1])...)
	}
	return out
}

// shippedSchedulerConfig is manifests/scheduler-config.yaml, decoded.
func shippedSchedulerConfig(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(framework.RepoRoot(t), "manifests", "scheduler-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var config map[string]any
	if err := sigsyaml.Unmarshal(data, &config); err != nil {
		t.Fatalf("decoding manifests/scheduler-config.yaml: %v", err)
	}
	return config
}

// provisionArgs decodes, strictly, the Provision plugin's args of a decoded
// KubeSchedulerConfiguration with one profile.
func provisionArgs(t *testing.T, config map[string]any) *provision.Args {
	t.Helper()
	var shape struct {
		Profiles []struct {
			PluginConfig []struct {
				Name string         `json:"name"`
				Args map[string]any `json:"args"`
			} `json:"pluginConfig"`
		} `json:"profiles"`
	}
	convert(t, config, &shape)
	if len(shape.Profiles) != 1 {
		t.Fatalf("the configuration has %d profiles, want 1", len(shape.Profiles))
	}
	for _, pc := range shape.Profiles[0].PluginConfig {
		if pc.Name != provision.Name {
			continue
		}
		data, err := sigsyaml.Marshal(pc.Args)
		if err != nil {
			t.Fatal(err)
		}
		args := &provision.Args{}
		if err := sigsyaml.UnmarshalStrict(data, args); err != nil {
			t.Fatalf("decoding the Provision args: %v", err)
		}
		return args
	}
	t.Fatalf("the configuration has no pluginConfig for %s", provision.Name)
	return nil
}

// validateProvisionArgs checks that the plugin would start with the configuration's args.
func validateProvisionArgs(t *testing.T, config map[string]any) {
	t.Helper()
	args := provisionArgs(t, config)
	args.SetDefaults()
	if errs := args.Validate(); len(errs) > 0 {
		t.Errorf("the Provision plugin rejects the rendered args: %v", errs.ToAggregate())
	}
}

// assertKinds checks that objs hold exactly the given kinds, each at least once.
func assertKinds(t *testing.T, objs []*unstructured.Unstructured, kinds ...string) {
	t.Helper()
	var got []string
	for _, o := range objs {
		if !slices.Contains(got, o.GetKind()) {
			got = append(got, o.GetKind())
		}
	}
	sort.Strings(got)
	sort.Strings(kinds)
	if diff := cmp.Diff(kinds, got); diff != "" {
		t.Errorf("rendered kinds (-want, +got):\n%s", diff)
	}
}

// grants lists what the RBAC objects of objs allow, one line per subject, scope and single
// permission ("ServiceAccount kube-system/nodewright in <cluster>: get apps/daemonsets"), so
// that two installations compare whatever they name their roles and however they group the
// rules. A binding of a role the installation does not define (a cluster's built-in role)
// counts as the role's name. A role nothing binds is an error.
func grants(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	type key struct{ kind, namespace, name string }
	roles := map[key][]rbacv1.PolicyRule{}
	bound := map[key]bool{}
	var bindings []rbacv1.RoleBinding
	for _, obj := range objs {
		switch obj.GetKind() {
		case "ClusterRole", "Role":
			var role rbacv1.Role
			convert(t, obj.Object, &role)
			roles[key{obj.GetKind(), role.Namespace, role.Name}] = role.Rules
		case "ClusterRoleBinding", "RoleBinding":
			var binding rbacv1.RoleBinding
			convert(t, obj.Object, &binding)
			bindings = append(bindings, binding)
		}
	}
	var out []string
	for _, b := range bindings {
		scope := "<cluster>"
		if b.Namespace != "" {
			scope = b.Namespace
		}
		roleKey := key{b.RoleRef.Kind, b.Namespace, b.RoleRef.Name}
		if b.RoleRef.Kind == "ClusterRole" {
			roleKey.namespace = ""
		}
		bound[roleKey] = true
		var perms []string
		if rules, ok := roles[roleKey]; ok {
			perms = permissions(rules)
		} else {
			perms = []string{"the built-in " + b.RoleRef.Kind + " " + b.RoleRef.Name}
		}
		for _, s := range b.Subjects {
			subject := fmt.Sprintf("%s %s/%s", s.Kind, s.Namespace, s.Name)
			for _, p := range perms {
				out = append(out, fmt.Sprintf("%s in %s: %s", subject, scope, p))
			}
		}
	}
	for k := range roles {
		if !bound[k] {
			t.Errorf("%s %s/%s is bound to nobody", k.kind, k.namespace, k.name)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// permissions expands rules into single "verb group/resource[/name]" permissions.
func permissions(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rules {
		for _, verb := range r.Verbs {
			for _, group := range r.APIGroups {
				for _, resource := range r.Resources {
					if len(r.ResourceNames) == 0 {
						out = append(out, fmt.Sprintf("%s %s/%s", verb, group, resource))
					}
					for _, name := range r.ResourceNames {
						out = append(out, fmt.Sprintf("%s %s/%s/%s", verb, group, resource, name))
					}
				}
			}
			for _, url := range r.NonResourceURLs {
				out = append(out, fmt.Sprintf("%s %s", verb, url))
			}
		}
	}
	return out
}

// schedulerConfigOf decodes the KubeSchedulerConfiguration of the one ConfigMap in objs.
func schedulerConfigOf(t *testing.T, objs []*unstructured.Unstructured) map[string]any {
	t.Helper()
	var found []string
	for _, obj := range objs {
		if obj.GetKind() != "ConfigMap" {
			continue
		}
		data, _, _ := unstructured.NestedString(obj.Object, "data", "config.yaml")
		found = append(found, data)
	}
	if len(found) != 1 {
		t.Fatalf("%d ConfigMaps with config.yaml, want 1", len(found))
	}
	var config map[string]any
	if err := sigsyaml.Unmarshal([]byte(found[0]), &config); err != nil {
		t.Fatalf("decoding the KubeSchedulerConfiguration: %v", err)
	}
	return config
}

// podSpecOf returns the pod spec of the one Deployment in objs.
func podSpecOf(t *testing.T, objs []*unstructured.Unstructured) map[string]any {
	t.Helper()
	var specs []map[string]any
	for _, obj := range objs {
		if obj.GetKind() == "Deployment" {
			spec, _, _ := unstructured.NestedMap(obj.Object, "spec", "template", "spec")
			specs = append(specs, spec)
		}
	}
	if len(specs) != 1 {
		t.Fatalf("%d Deployments, want 1", len(specs))
	}
	return specs[0]
}

// convert turns a decoded object into a typed one through JSON.
func convert(t *testing.T, in any, out any) {
	t.Helper()
	data, err := sigsyaml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := sigsyaml.Unmarshal(data, out); err != nil {
		t.Fatalf("converting to %T: %v", out, err)
	}
}
