package emulator

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

const bareNodeConfig = `apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  cluster:
    name: test
    apiServerEndpoint: https://127.0.0.1:6443
    certificateAuthority: Y2E=
    cidr: 10.96.0.0/12
  kubelet:
    config:
      maxPods: 42
      kubeReserved:
        cpu: 80m
        memory: 893Mi
      evictionHard:
        memory.available: 100Mi
      registerWithTaints:
        - key: from-config
          effect: PreferNoSchedule
    flags:
      - --node-labels=a=1,b=2
      - --register-with-taints=dedicated=gpu:NoSchedule,startup:NoExecute
`

func TestParseUserData(t *testing.T) {
	tests := []struct {
		name     string
		userData string
		want     *registration
		wantErr  string
	}{
		{
			name:     "MIME with a script part",
			userData: testUserData("--node-labels=nodewright.dev/provisioner-name=default,node.kubernetes.io/lifecycle=spot", "--register-with-taints=team=a:NoSchedule"),
			want: &registration{
				labels: map[string]string{"nodewright.dev/provisioner-name": "default", "node.kubernetes.io/lifecycle": "spot"},
				taints: []corev1.Taint{{Key: "team", Value: "a", Effect: corev1.TaintEffectNoSchedule}},
			},
		},
		{
			name:     "bare NodeConfig with kubelet config; flags come after the config",
			userData: bareNodeConfig,
			want: &registration{
				labels: map[string]string{"a": "1", "b": "2"},
				taints: []corev1.Taint{
					{Key: "from-config", Effect: corev1.TaintEffectPreferNoSchedule},
					{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule},
					{Key: "startup", Effect: corev1.TaintEffectNoExecute},
				},
				maxPods:      42,
				kubeReserved: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("80m"), corev1.ResourceMemory: resource.MustParse("893Mi")},
				evictionHard: map[string]string{"memory.available": "100Mi"},
			},
		},
		{
			name: "base64 part and two NodeConfigs merged",
			userData: "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XYZ\n\n--XYZ\nContent-Type: application/node.eks.aws\nContent-Transfer-Encoding: base64\n\n" +
				base64.StdEncoding.EncodeToString([]byte(bareNodeConfig)) + "\n--XYZ\nContent-Type: application/node.eks.aws\n\n" +
				"---\napiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    config:\n      maxPods: 7\n    flags: [\"--node-labels=c=3\", \"--max-pods\", \"9\"]\n--XYZ--\n",
			want: &registration{
				labels: map[string]string{"a": "1", "b": "2", "c": "3"},
				taints: []corev1.Taint{
					{Key: "from-config", Effect: corev1.TaintEffectPreferNoSchedule},
					{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule},
					{Key: "startup", Effect: corev1.TaintEffectNoExecute},
				},
				maxPods:      9,
				kubeReserved: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("80m"), corev1.ResourceMemory: resource.MustParse("893Mi")},
				evictionHard: map[string]string{"memory.available": "100Mi"},
			},
		},
		{name: "empty", userData: "", wantErr: "empty"},
		{name: "bottlerocket TOML", userData: "[settings.kubernetes]\ncluster-name = \"x\"\n", wantErr: "neither MIME multipart nor a NodeConfig"},
		{name: "missing cluster", userData: "apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  cluster:\n    name: x\n", wantErr: "Apiserver endpoint is missing"},
		{name: "unknown field", userData: strings.Replace(bareNodeConfig, "cidr:", "cidrs:", 1), wantErr: "unknown field"},
		{name: "wrong kind", userData: "apiVersion: v1\nkind: ConfigMap\n", wantErr: "not a node.eks.aws NodeConfig"},
		{name: "restricted label", userData: testUserData("--node-labels=node-role.kubernetes.io/worker="), wantErr: "unknown 'kubernetes.io' or 'k8s.io' labels"},
		{name: "bad label value", userData: testUserData("--node-labels=a=b c"), wantErr: "value"},
		{name: "bad taint effect", userData: testUserData("--register-with-taints=a=b:Sometimes"), wantErr: "invalid effect"},
		{name: "taint without effect", userData: testUserData("--register-with-taints=a=b"), wantErr: "no effect"},
		{name: "bad eviction threshold", userData: testUserData("--eviction-hard=memory.available<lots"), wantErr: "not a quantity or a percentage"},
		{name: "no NodeConfig part", userData: "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/x-shellscript\n\necho\n--B--\n", wantErr: "no NodeConfig"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseUserData(tc.userData)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(registration{})); diff != "" {
				t.Errorf("registration (-want, +got):\n%s", diff)
			}
		})
	}
}

func TestNodeAllocatable(t *testing.T) {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("8"),
		corev1.ResourceMemory:           resource.MustParse("32Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("20Gi"),
		corev1.ResourcePods:             resource.MustParse("58"),
	}
	tests := []struct {
		name string
		reg  *registration
		want corev1.ResourceList
	}{
		{name: "nothing reserved", reg: &registration{}, want: capacity},
		{
			name: "reserved and evictions",
			reg: &registration{
				kubeReserved:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("90m"), corev1.ResourceMemory: resource.MustParse("893Mi")},
				systemReserved: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")},
				evictionHard:   map[string]string{"memory.available": "100Mi", "nodefs.available": "10%"},
			},
			want: corev1.ResourceList{
				// 8 - 0.09 - 0.01
				corev1.ResourceCPU: resource.MustParse("7900m"),
				// 32768Mi - 893Mi - 100Mi
				corev1.ResourceMemory: resource.MustParse("31775Mi"),
				// 20Gi - 10%
				corev1.ResourceEphemeralStorage: resource.MustParse("19327352832"),
				corev1.ResourcePods:             resource.MustParse("58"),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := nodeAllocatable(capacity, tc.reg)
			for name, want := range tc.want {
				if q := got[name]; q.Cmp(want) != 0 {
					t.Errorf("%s = %s, want %s", name, q.String(), want.String())
				}
			}
		})
	}
}
