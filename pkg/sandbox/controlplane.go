package sandbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

// Options configure a sandbox control plane.
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager, kwok and
	// kwok-stages.yaml, as `make tools` builds them. Empty means DefaultBinDir().
	BinDir string
	// Dir holds the sandbox's state: certificates, etcd data, the kubeconfig and one log per
	// process. Empty means a new temporary directory, removed by Stop.
	Dir string
	// StartTimeout bounds the wait for each component to become healthy. Defaults to 2m:
	// a cold kube-apiserver on two cores takes tens of seconds to install its APIs.
	StartTimeout time.Duration
	// Workloads turns on WorkloadGates in the apiserver and the controller manager, and
	// serves WorkloadAPI: Workloads and PodGroups, and the PodGroups the Job controller
	// makes for a Job that asks for one. A scheduler that schedules PodGroups needs
	// GenericWorkload on as well (see WorkloadGates).
	Workloads bool
}

// ControlPlane is a running sandbox cluster. Stop it when done.
type ControlPlane struct {
	dir        string
	removeDir  bool
	kubeconfig string
	restConfig *rest.Config

	spawner *spawner
	// mu guards processes and stopped, and is held while a process is spawned, so that no
	// process starts once Stop has begun (and closed the spawner).
	mu        sync.Mutex
	processes []*process // in start order; a restarted process takes its forerunner's place
	stopped   bool
	stopOnce  sync.Once
}

// Start starts etcd, kube-apiserver, kube-controller-manager and kwok, and returns once each
// is healthy and the cluster can run pods: the controller manager has created the default
// service account, and kwok is ready to play the kubelet of any Node. On error, whatever was
// started is stopped again.
func Start(ctx context.Context, opts Options) (_ *ControlPlane, err error) {
	logger := klog.FromContext(ctx)
	binDir := opts.BinDir
	if binDir == "" {
		if binDir, err = DefaultBinDir(); err != nil {
			return nil, err
		}
	}
	bins, err := findBinaries(binDir)
	if err != nil {
		return nil, err
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	cp := &ControlPlane{dir: opts.Dir, spawner: newSpawner()}
	if cp.dir == "" {
		if cp.dir, err = os.MkdirTemp("", "nodewright-sandbox-"); err != nil {
			return nil, err
		}
		cp.removeDir = true
	}
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()
	for _, d := range []string{"logs", "etcd"} {
		if err := os.MkdirAll(filepath.Join(cp.dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	certs, err := cp.makePKI()
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	etcdPort, etcdPeerPort, apiPort, kcmPort, kwokPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	apiURL := "https://127.0.0.1:" + strconv.Itoa(apiPort)

	logger.V(2).Info("Starting sandbox control plane", "dir", cp.dir, "apiserver", apiURL)
	if err := cp.run(ctx, "etcd", bins.etcd, etcdArgs(cp.dir, etcdURL, etcdPeerPort), timeout,
		httpCheck(http.DefaultClient, etcdURL+"/health")); err != nil {
		return nil, err
	}
	adminClient, err := certs.httpClient(adminCertFile, adminKeyFile)
	if err != nil {
		return nil, err
	}
	if err := cp.run(ctx, "kube-apiserver", bins.apiserver, apiserverArgs(certs, etcdURL, apiPort, opts.Workloads), timeout,
		httpCheck(adminClient, apiURL+"/readyz")); err != nil {
		return nil, err
	}
	if cp.restConfig, err = cp.writeKubeconfig(certs, apiURL); err != nil {
		return nil, err
	}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if err := cp.run(ctx, "kube-controller-manager", bins.controllerManager,
		controllerManagerArgs(certs, cp.kubeconfig, kcmPort, opts.Workloads), timeout,
		httpCheck(insecure, "https://127.0.0.1:"+strconv.Itoa(kcmPort)+"/healthz")); err != nil {
		return nil, err
	}
	kwokAddr := "127.0.0.1:" + strconv.Itoa(kwokPort)
	if err := cp.run(ctx, "kwok", bins.kwok, kwokArgs(cp.kubeconfig, bins.kwokStages, kwokAddr), timeout,
		httpCheck(http.DefaultClient, "http://"+kwokAddr+"/healthz")); err != nil {
		return nil, err
	}
	if err := cp.waitForServiceAccount(ctx, timeout); err != nil {
		return nil, err
	}
	logger.V(2).Info("Sandbox control plane is ready", "kubeconfig", cp.kubeconfig)
	return cp, nil
}

// Kubeconfig is the path of an admin (system:masters) kubeconfig for the sandbox.
func (cp *ControlPlane) Kubeconfig() string { return cp.kubeconfig }

// RESTConfig returns a copy of the admin client configuration.
func (cp *ControlPlane) RESTConfig() *rest.Config { return rest.CopyConfig(cp.restConfig) }

// Dir is the sandbox's state directory; logs/ in it holds one log per process.
func (cp *ControlPlane) Dir() string { return cp.dir }

// ServiceCIDR is the kube-apiserver's service CIDR (--service-cluster-ip-range).
func (cp *ControlPlane) ServiceCIDR() string { return serviceCIDR }

// Stop stops every process, last started first, and waits for them to exit. It removes the
// state directory if Start created it. It is safe to call more than once and from a signal
// handler's goroutine.
func (cp *ControlPlane) Stop() {
	cp.stopOnce.Do(func() {
		cp.mu.Lock()
		cp.stopped = true
		procs := cp.processes
		cp.mu.Unlock()
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop()
		}
		cp.spawner.close()
		if cp.removeDir {
			_ = os.RemoveAll(cp.dir)
		}
	})
}

// RestartAPIServer stops the kube-apiserver (SIGTERM, as Stop does) and starts it again with
// the same binary, flags and port, and returns once it is ready (/readyz), as Start does. The
// chaos soak uses it to take the apiserver away from a running scheduler and controller:
// since etcd keeps the cluster's state and the address and certificates stay the same,
// clients of Kubeconfig and RESTConfig, and the controller manager and kwok, reconnect by
// themselves, and watches resume after a relist. The new process appends to the same log and
// takes the old one's place in the stop order. It fails once Stop has been called.
func (cp *ControlPlane) RestartAPIServer(ctx context.Context) error {
	p, err := cp.restart(ctx, "kube-apiserver")
	if err != nil {
		return err
	}
	return waitHealthy(ctx, p)
}

// restart stops the process called name and starts its spec again in its place. It holds
// mu while it does (not while the new process gets healthy), so a concurrent Stop waits for
// the new process and then stops that one.
func (cp *ControlPlane) restart(ctx context.Context, name string) (*process, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.stopped {
		return nil, fmt.Errorf("restarting %s: the control plane is stopped", name)
	}
	i := slices.IndexFunc(cp.processes, func(p *process) bool { return p.spec.name == name })
	if i < 0 {
		return nil, fmt.Errorf("restarting %s: it was never started", name)
	}
	old := cp.processes[i]
	old.stop()
	klog.FromContext(ctx).V(2).Info("Stopped sandbox component for a restart", "component", name, "pid", old.cmd.Process.Pid)
	p, err := cp.spawner.startProcess(old.spec, filepath.Join(cp.dir, "logs"))
	if err != nil {
		return nil, err
	}
	cp.processes[i] = p
	return p, nil
}

// run starts one process and waits until healthy reports nil, the process exits, or the
// timeout passes.
func (cp *ControlPlane) run(ctx context.Context, name, bin string, args []string, timeout time.Duration, healthy func(context.Context) error) error {
	spec := processSpec{name: name, bin: bin, args: args, timeout: timeout, healthy: healthy}
	cp.mu.Lock()
	if cp.stopped {
		cp.mu.Unlock()
		return fmt.Errorf("starting %s: the control plane is stopped", name)
	}
	p, err := cp.spawner.startProcess(spec, filepath.Join(cp.dir, "logs"))
	if err == nil {
		cp.processes = append(cp.processes, p)
	}
	cp.mu.Unlock()
	if err != nil {
		return err
	}
	return waitHealthy(ctx, p)
}

// waitHealthy waits until p's health check reports nil, p exits, or its spec's timeout
// passes. A process that dies while starting is reported with the tail of its log.
func waitHealthy(ctx context.Context, p *process) error {
	name := p.spec.name
	ctx, cancel := context.WithTimeout(ctx, p.spec.timeout)
	defer cancel()
	var lastErr error
	for {
		if done, exitErr := p.exited(); done {
			return fmt.Errorf("%s exited while starting (%v); last lines of %s:\n%s", name, exitErr, p.logPath, tail(p.logPath, 20))
		}
		if lastErr = p.spec.healthy(ctx); lastErr == nil {
			klog.FromContext(ctx).V(2).Info("Sandbox component is healthy", "component", name, "pid", p.cmd.Process.Pid)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to become healthy: %w (last check: %v); its log is %s", name, ctx.Err(), lastErr, p.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitForServiceAccount waits for the controller manager to create the default service
// account: until it has, the apiserver rejects every pod.
func (cp *ControlPlane) waitForServiceAccount(ctx context.Context, timeout time.Duration) error {
	client, err := kubernetes.NewForConfig(cp.restConfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the default service account: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (cp *ControlPlane) makePKI() (*pki, error) {
	certs, err := newPKI(filepath.Join(cp.dir, "pki"))
	if err != nil {
		return nil, err
	}
	// The apiserver's serving names: loopback, and the in-cluster names pods would use.
	if err := certs.issue(servingCertFile, servingKeyFile, pkix.Name{CommonName: "kube-apiserver"}, x509.ExtKeyUsageServerAuth,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(serviceClusterIP)}); err != nil {
		return nil, err
	}
	if err := certs.issue(adminCertFile, adminKeyFile, pkix.Name{CommonName: "nodewright-admin", Organization: []string{"system:masters"}},
		x509.ExtKeyUsageClientAuth, nil, nil); err != nil {
		return nil, err
	}
	if err := certs.serviceAccountKey(); err != nil {
		return nil, err
	}
	return certs, nil
}

// httpClient returns a client that trusts the sandbox CA and presents the given certificate.
func (p *pki) httpClient(certFile, keyFile string) (*http.Client, error) {
	pair, err := tls.LoadX509KeyPair(p.path(certFile), p.path(keyFile))
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.ca)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      roots,
	}}}, nil
}

// httpCheck returns a health check that wants 200 from url.
func httpCheck(client *http.Client, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// freePorts asks the kernel for n free loopback ports. Another process could take one
// before our component binds it; the component then fails to start and Start says so.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := 0
	for i := len(data) - 1; i >= 0; i-- {
		if data[i] == '\n' && i != len(data)-1 {
			lines++
			if lines == n {
				return string(data[i+1:])
			}
		}
	}
	return string(data)
}

var errNoBinaries = errors.New("the sandbox binaries are not built: run `make tools`")
