package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
)

// BinDirEnv names the environment variable that overrides DefaultBinDir.
const BinDirEnv = "NODEWRIGHT_BIN_DIR"

type binaries struct {
	etcd, apiserver, controllerManager, kwok, kwokStages string
}

// DefaultBinDir finds the directory `make tools` built the control plane into: $NODEWRIGHT_BIN_DIR
// if set, else the directory of the running executable if it holds kube-apiserver (bin/nodewright),
// else bin/ of the nearest enclosing directory with a go.mod (go test runs in the package's
// directory).
func DefaultBinDir() (string, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		return filepath.Abs(dir)
	}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err == nil {
			return dir, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "bin"), nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod above %s and $%s is not set: %w", wd, BinDirEnv, errNoBinaries)
		}
	}
}

func findBinaries(dir string) (binaries, error) {
	b := binaries{
		etcd:              filepath.Join(dir, "etcd"),
		apiserver:         filepath.Join(dir, "kube-apiserver"),
		controllerManager: filepath.Join(dir, "kube-controller-manager"),
		kwok:              filepath.Join(dir, "kwok"),
		kwokStages:        filepath.Join(dir, "kwok-stages.yaml"),
	}
	for _, path := range []string{b.etcd, b.apiserver, b.controllerManager, b.kwok, b.kwokStages} {
		if _, err := os.Stat(path); err != nil {
			return b, fmt.Errorf("%s is missing: %w", path, errNoBinaries)
		}
	}
	return b, nil
}
