package sandbox

import (
	"path/filepath"
	"strconv"
	"strings"
)

// serviceCIDR is the sandbox's Service IP range; serviceClusterIP is the apiserver's
// `kubernetes` Service address in it.
const (
	serviceCIDR      = "10.96.0.0/16"
	serviceClusterIP = "10.96.0.1"
)

func etcdArgs(dir, clientURL string, peerPort int) []string {
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	return []string{
		"--name=sandbox",
		"--data-dir=" + filepath.Join(dir, "etcd"),
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=sandbox=" + peerURL,
		// A throwaway cluster: durability buys nothing and fsync costs seconds per test run.
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	}
}

// WorkloadGates are the feature gates of the Workload and PodGroup APIs
// (scheduling.k8s.io/v1beta1), of the Job controller's PodGroups and of PodGroups' topology
// constraints (a gang in one zone), off by default in Kubernetes 1.37: what Options.Workloads
// turns on in the apiserver and the controller manager, and what a scheduler that schedules
// PodGroups needs.
var WorkloadGates = []string{"GenericWorkload=true", "WorkloadWithJob=true", "TopologyAwareWorkloadScheduling=true"}

// WorkloadAPI is the API version of Workloads and PodGroups, not served by default.
const WorkloadAPI = "scheduling.k8s.io/v1beta1"

// gateArgs returns the flags that turn on the Workload gates if workloads, else none; with
// api, the flag that serves WorkloadAPI as well.
func gateArgs(workloads, api bool) []string {
	if !workloads {
		return nil
	}
	args := []string{"--feature-gates=" + strings.Join(WorkloadGates, ",")}
	if api {
		args = append(args, "--runtime-config="+WorkloadAPI+"=true")
	}
	return args
}

func apiserverArgs(certs *pki, etcdURL string, port int, workloads bool) []string {
	return append([]string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(certs.dir, "apiserver"),
		"--tls-cert-file=" + certs.path(servingCertFile),
		"--tls-private-key-file=" + certs.path(servingKeyFile),
		"--client-ca-file=" + certs.path(caCertFile),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + certs.path(saPubFile),
		"--service-account-signing-key-file=" + certs.path(saKeyFile),
		"--service-cluster-ip-range=" + serviceCIDR,
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		// The `kubernetes` Service's endpoints would point at 127.0.0.1, which the
		// reconciler refuses; nothing in the sandbox reaches the apiserver through it.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		// On SIGTERM, drain the requests in flight and then give open watches 2s to end,
		// not the request timeout (60s): otherwise Stop and RestartAPIServer, with clients
		// still watching, wait out stopGrace and kill it.
		"--shutdown-send-retry-after=true",
	}, gateArgs(workloads, true)...)
}

func controllerManagerArgs(certs *pki, kubeconfig string, port int, workloads bool) []string {
	return append([]string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(certs.dir, "controller-manager"),
		"--service-account-private-key-file=" + certs.path(saKeyFile),
		"--root-ca-file=" + certs.path(caCertFile),
		"--cluster-signing-cert-file=" + certs.path(caCertFile),
		"--cluster-signing-key-file=" + certs.path(caKeyFile),
		"--service-cluster-ip-range=" + serviceCIDR,
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--profiling=false",
		// The default, 20 requests/s, paces a ReplicaSet's creation or deletion of hundreds
		// of pods at 20 a second: what a scale-down measured here would then measure.
		"--kube-api-qps=200",
		"--kube-api-burst=300",
	}, gateArgs(workloads, false)...)
}

func kwokArgs(kubeconfig, stages, addr string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--config=" + stages,
		// Every node of the sandbox is simulated: there is no real kubelet to compete with.
		"--manage-all-nodes=true",
		"--node-lease-duration-seconds=40",
		"--server-address=" + addr,
		"--cidr=10.244.0.0/16",
		"--node-ip=10.0.0.1",
	}
}
