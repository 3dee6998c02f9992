package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/nodewright/nodewright/manifests"
	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
	"github.com/nodewright/nodewright/pkg/aws/emulator"
	"github.com/nodewright/nodewright/pkg/plugins/provision"
	"github.com/nodewright/nodewright/pkg/sandbox"
	"github.com/nodewright/nodewright/pkg/sandbox/scheduler"
)

// schedulerName is the profile every benchmark pod names.
const schedulerName = "nodewright-scheduler"

// cluster is a fresh sandbox control plane with nodewright's CRDs, the EC2 emulator joined to
// it with no launch latency and, unless asked for one, no join delay (so that timings measure
// nodewright, not EC2), an EC2NodeClass and a Provisioner named "default" with no
// requirements.
type cluster struct {
	cp       *sandbox.ControlPlane
	emulator *emulator.Emulator
	client   kubernetes.Interface
	dir      string
}

// startCluster starts the cluster in a new temporary directory, its instances joining
// joinDelay after they run (0: at once); stop it with stop.
func startCluster(ctx context.Context, joinDelay time.Duration) (_ *cluster, err error) {
	if joinDelay == 0 {
		joinDelay = -1 // the emulator's "none"
	}
	return startClusterWith(ctx, emulator.Options{LaunchLatency: -1, JoinDelay: joinDelay, JoinPollInterval: 20 * time.Millisecond})
}

// startClusterWith starts the cluster with the emulator's options eopts (its RESTConfig set
// here).
func startClusterWith(ctx context.Context, eopts emulator.Options) (_ *cluster, err error) {
	dir, err := os.MkdirTemp("", "nodewright-bench-")
	if err != nil {
		return nil, err
	}
	cp, err := sandbox.Start(ctx, sandbox.Options{Dir: dir})
	if err != nil {
		return nil, fmt.Errorf("starting the sandbox in %s: %w", dir, err)
	}
	c := &cluster{cp: cp, dir: dir}
	defer func() {
		if err != nil {
			c.stop(false)
		}
	}()
	if err := sandbox.InstallCRDs(ctx, cp.RESTConfig(), manifests.CRDs()...); err != nil {
		return nil, fmt.Errorf("installing nodewright's CRDs: %w", err)
	}
	if c.client, err = kubernetes.NewForConfig(c.restConfig()); err != nil {
		return nil, err
	}
	eopts.RESTConfig = c.restConfig()
	c.emulator = emulator.New(eopts)
	if err := c.emulator.Start(); err != nil {
		return nil, fmt.Errorf("starting the EC2 emulator: %w", err)
	}
	if err := c.createNodewrightObjects(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// restConfig is the admin configuration, with a rate limit high enough that creating a
// thousand pods at once is not throttled on the client side.
func (c *cluster) restConfig() *rest.Config {
	cfg := c.cp.RESTConfig()
	cfg.QPS, cfg.Burst = 2000, 4000
	return cfg
}

// stop stops the cluster and, if remove, deletes its directory; a failed run keeps it, for
// the logs of the control plane and of the scheduler, and so does every run with
// NODEWRIGHT_BENCH_KEEP set.
func (c *cluster) stop(remove bool) {
	if c.emulator != nil {
		c.emulator.Close()
	}
	c.cp.Stop()
	if remove && os.Getenv("NODEWRIGHT_BENCH_KEEP") == "" {
		_ = os.RemoveAll(c.dir)
	}
}

// createNodewrightObjects creates the EC2NodeClass and the Provisioner "default".
func (c *cluster) createNodewrightObjects(ctx context.Context) error {
	dyn, err := dynamic.NewForConfig(c.restConfig())
	if err != nil {
		return err
	}
	tags := map[string]string{emulator.DiscoveryTagKey: emulator.DefaultClusterName}
	objects := []struct {
		resource string
		obj      runtime.Object
	}{
		{"ec2nodeclasses", &v1alpha1.EC2NodeClass{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "EC2NodeClass"},
			ObjectMeta: metav1.ObjectMeta{Name: "default"},
			Spec: v1alpha1.EC2NodeClassSpec{
				SubnetSelector:        v1alpha1.SubnetSelector{Tags: tags},
				SecurityGroupSelector: v1alpha1.SecurityGroupSelector{Tags: tags},
				InstanceProfile:       new("nodes"),
			},
		}},
		{"provisioners", &v1alpha1.Provisioner{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "Provisioner"},
			ObjectMeta: metav1.ObjectMeta{Name: "default"},
			Spec:       v1alpha1.ProvisionerSpec{NodeClassRef: v1alpha1.NodeClassReference{Name: "default"}},
		}},
	}
	for _, o := range objects {
		content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o.obj)
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{Object: content}
		if _, err := dyn.Resource(v1alpha1.SchemeGroupVersion.WithResource(o.resource)).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating %s: %w", o.resource, err)
		}
	}
	return nil
}

// schedulerConfig writes the shipped KubeSchedulerConfiguration, pointed at the cluster and
// the emulator, to name in the cluster's directory. Without withProvision, Provision is
// removed from the profile (and with it the lifecycle it runs). highQPS raises the client's
// rate limit (default 50 QPS, 100 burst) to 5000, so that binding is not throttled when
// scheduling throughput is what is measured; leader election is then off too.
func (c *cluster) schedulerConfig(name string, withProvision, highQPS bool) (string, error) {
	var cfg map[string]any
	if err := sigsyaml.Unmarshal(manifests.SchedulerConfig, &cfg); err != nil {
		return "", err
	}
	if highQPS {
		cfg["clientConnection"] = map[string]any{"qps": 5000, "burst": 5000}
		cfg["leaderElection"] = map[string]any{"leaderElect": false}
	}
	if !withProvision {
		removeProvision(cfg)
	}
	data, err := sigsyaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	restCfg := c.cp.RESTConfig()
	path := filepath.Join(c.dir, name)
	args := map[string]any{
		"clusterName": emulator.DefaultClusterName, "region": emulator.Region, "endpoint": c.emulator.URL(),
		"clusterEndpoint": restCfg.Host, "clusterCA": base64.StdEncoding.EncodeToString(restCfg.CAData),
		"clusterCIDR": c.cp.ServiceCIDR(),
	}
	if !withProvision {
		args = nil
	}
	if err := scheduler.WriteConfig(data, path, c.cp.Kubeconfig(), args); err != nil {
		return "", err
	}
	return path, nil
}

// removeProvision removes the Provision plugin from every profile of cfg, a
// KubeSchedulerConfiguration: from the plugins of every extension point and from pluginConfig.
func removeProvision(cfg map[string]any) {
	notProvision := func(entries []any) []any {
		var out []any
		for _, e := range entries {
			if m, ok := e.(map[string]any); !ok || m["name"] != provision.Name {
				out = append(out, e)
			}
		}
		return out
	}
	profiles, _ := cfg["profiles"].([]any)
	for _, p := range profiles {
		profile, _ := p.(map[string]any)
		if pc, ok := profile["pluginConfig"].([]any); ok {
			profile["pluginConfig"] = notProvision(pc)
		}
		plugins, _ := profile["plugins"].(map[string]any)
		for _, point := range plugins {
			set, _ := point.(map[string]any)
			if enabled, ok := set["enabled"].([]any); ok {
				set["enabled"] = notProvision(enabled)
			}
		}
	}
}

// schedulerProcess is bin/nodewright-scheduler running as a child process.
type schedulerProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startScheduler runs bin/nodewright-scheduler with config, logging to log in the cluster's
// directory, with flags added (without a --secure-port among them, it serves none).
func (c *cluster) startScheduler(config, log string, flags ...string) (*schedulerProcess, error) {
	binDir, err := sandbox.DefaultBinDir()
	if err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(c.dir, log))
	if err != nil {
		return nil, err
	}
	args := []string{"--config", config, "--v=" + schedulerVerbosity()}
	if !slices.ContainsFunc(flags, func(f string) bool { return strings.HasPrefix(f, "--secure-port") }) {
		args = append(args, "--secure-port=0")
	}
	cmd := exec.Command(filepath.Join(binDir, "nodewright-scheduler"), append(args, flags...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("starting nodewright-scheduler (make build): %w", err)
	}
	s := &schedulerProcess{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(s.done)
	}()
	return s, nil
}

// stop sends SIGTERM and waits up to 30s before it kills the process.
func (s *schedulerProcess) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// clockTicks is the kernel's USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// usage reads the process's peak resident set (VmHWM, MiB) and its CPU time (user + system,
// seconds) so far.
func (s *schedulerProcess) usage() (peakRSSMiB, cpuSeconds float64, err error) {
	pid := s.cmd.Process.Pid
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, 0, fmt.Errorf("parsing VmHWM %q: %w", rest, err)
			}
			peakRSSMiB = kb / 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name, in parentheses, may hold spaces: the fields count from after it.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 13 {
		return 0, 0, errors.New("parsing /proc/<pid>/stat: too few fields")
	}
	// Fields 14 and 15 of stat(5) are utime and stime; fields[0] here is field 3.
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("parsing utime and stime: %w", err)
	}
	return peakRSSMiB, (utime + stime) / clockTicks, nil
}

// startShipped starts bin/nodewright-scheduler with the shipped configuration, logging to
// scheduler.log, and waits until it holds its lease; then it creates the namespace ns and
// starts watching its pods. Stop both when done.
func (c *cluster) startShipped(ctx context.Context, ns string) (*schedulerProcess, *podWatch, error) {
	config, err := c.schedulerConfig("scheduler-config.yaml", true, false)
	if err != nil {
		return nil, nil, err
	}
	s, err := c.startScheduler(config, "scheduler.log")
	if err != nil {
		return nil, nil, err
	}
	if err := c.waitForLeader(ctx); err != nil {
		s.stop()
		return nil, nil, fmt.Errorf("waiting for the scheduler's lease: %w", err)
	}
	if err := c.createNamespace(ctx, ns); err != nil {
		s.stop()
		return nil, nil, err
	}
	w, err := c.watchPods(ctx, ns)
	if err != nil {
		s.stop()
		return nil, nil, err
	}
	return s, w, nil
}

// waitForLeader waits until the scheduler with leader election on holds its lease.
func (c *cluster) waitForLeader(ctx context.Context) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		lease, err := c.client.CoordinationV1().Leases("kube-system").Get(ctx, "nodewright-scheduler", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "", err
	})
}

// podTimes are the local times the watch first saw a pod created, unschedulable, bound and
// running.
type podTimes struct {
	created, unschedulable, bound, running time.Time
}

// podWatch records podTimes for the pods of a namespace from an informer's events, which
// arrive within milliseconds, where the API's timestamps have a resolution of a second.
type podWatch struct {
	mu    sync.Mutex
	times map[string]*podTimes
	stop  chan struct{}
}

// watchPods starts watching the pods of ns; stop it with close.
func (c *cluster) watchPods(ctx context.Context, ns string) (*podWatch, error) {
	w := &podWatch{times: map[string]*podTimes{}, stop: make(chan struct{})}
	factory := informers.NewSharedInformerFactoryWithOptions(c.client, 0, informers.WithNamespace(ns))
	informer := factory.Core().V1().Pods().Informer()
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.see(obj) },
		UpdateFunc: func(_, obj any) { w.see(obj) },
	}); err != nil {
		return nil, err
	}
	factory.Start(w.stop)
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return nil, errors.New("the pod informer did not sync")
	}
	return w, nil
}

func (w *podWatch) see(obj any) {
	now := time.Now()
	pod, ok := obj.(*v1.Pod)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.times[pod.Name]
	if t == nil {
		t = &podTimes{created: now}
		w.times[pod.Name] = t
	}
	if t.unschedulable.IsZero() {
		for _, cond := range pod.Status.Conditions {
			if cond.Type == v1.PodScheduled && cond.Status == v1.ConditionFalse && cond.Reason == v1.PodReasonUnschedulable {
				t.unschedulable = now
			}
		}
	}
	if t.bound.IsZero() && pod.Spec.NodeName != "" {
		t.bound = now
	}
	if t.running.IsZero() && pod.Status.Phase == v1.PodRunning {
		t.running = now
	}
}

// snapshot returns a copy of the times by pod name.
func (w *podWatch) snapshot() map[string]podTimes {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]podTimes, len(w.times))
	for k, v := range w.times {
		out[k] = *v
	}
	return out
}

func (w *podWatch) close() { close(w.stop) }

// createNamespace creates a namespace and waits for its default service account, without
// which pods cannot be created.
func (c *cluster) createNamespace(ctx context.Context, name string) error {
	if _, err := c.client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := c.client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

// createPods creates pods with 32 concurrent clients, as a Deployment controller would at
// scale, and returns the first error.
func (c *cluster) createPods(ctx context.Context, pods []*v1.Pod) error {
	work := make(chan *v1.Pod)
	errs := make(chan error, len(pods))
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for pod := range work {
				if _, err := c.client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("creating pod %s: %w", pod.Name, err)
				}
			}
		})
	}
	for _, pod := range pods {
		work <- pod
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs
}

// schedulerVerbosity is the scheduler's -v: NODEWRIGHT_BENCH_V, else 1 (the operator-facing
// lines only, so that logging costs the measured process little).
func schedulerVerbosity() string {
	if v := os.Getenv("NODEWRIGHT_BENCH_V"); v != "" {
		return v
	}
	return "1"
}
