package aws

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

func TestUserData(t *testing.T) {
	base := nodeSettings{clusterName: "c", endpoint: "https://k", ca: "Y2E=", cidr: "10.96.0.0/12",
		labels:  map[string]string{"b": "2", "a": "1"},
		taints:  []corev1.Taint{{Key: "k", Value: "v", Effect: corev1.TaintEffectNoSchedule}, {Key: "s", Effect: corev1.TaintEffectNoExecute}},
		kubelet: &v1alpha1.KubeletConfiguration{MaxPods: ptr(int32(20))}}
	withScript := base
	withScript.custom = ptr("#!/bin/bash\necho hi\n")
	tests := []struct {
		name     string
		family   v1alpha1.AMIFamily
		settings nodeSettings
		want     string
	}{
		{
			name: "AL2023", family: v1alpha1.AMIFamilyAL2023, settings: base,
			want: `MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="//"

--//
Content-Type: application/node.eks.aws

apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  cluster:
    apiServerEndpoint: https://k
    certificateAuthority: Y2E=
    cidr: 10.96.0.0/12
    name: c
  kubelet:
    config:
      maxPods: 20
      systemReserved:
        cpu: 100m
        memory: 100Mi
    flags:
    - --node-labels=a=1,b=2
    - --register-with-taints=k=v:NoSchedule,s:NoExecute

--//--
`,
		},
		{
			name: "AL2023 with a script", family: v1alpha1.AMIFamilyAL2023, settings: withScript,
			want: "--//\nContent-Type: text/x-shellscript; charset=\"us-ascii\"\n\n#!/bin/bash\necho hi\n\n--//\nContent-Type: application/node.eks.aws\n",
		},
		{
			name: "Bottlerocket", family: v1alpha1.AMIFamilyBottlerocket, settings: base,
			want: `[settings.kubernetes]
cluster-name = "c"
api-server = "https://k"
cluster-certificate = "Y2E="
max-pods = 20

[settings.kubernetes.node-labels]
"a" = "1"
"b" = "2"

[settings.kubernetes.node-taints]
"k" = ["v:NoSchedule"]
"s" = [":NoExecute"]
`,
		},
		{name: "Custom", family: v1alpha1.AMIFamilyCustom, settings: withScript, want: "#!/bin/bash\necho hi\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := userData(tc.family, tc.settings)
			if err != nil {
				t.Fatalf("userData: %v", err)
			}
			if strings.HasPrefix(tc.want, "--") {
				if !strings.Contains(got, tc.want) {
					t.Errorf("user data lacks %q:\n%s", tc.want, got)
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("user data (-want, +got):\n%s", diff)
			}
		})
	}
}
