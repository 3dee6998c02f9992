// Package manifests embeds the files of this directory that nodewright's binaries need at
// run time, so a binary works wherever it is copied.
package manifests

import (
	"embed"
	"io/fs"
)

// SchedulerConfig is scheduler-config.yaml: the KubeSchedulerConfiguration of
// nodewright-scheduler, as shipped.
//
//go:embed scheduler-config.yaml
var SchedulerConfig []byte

// Inflate is inflate.yaml: the seed tutorial's inflate Deployment.
//
//go:embed inflate.yaml
var Inflate []byte

// crds holds the CustomResourceDefinitions `make generate` writes from pkg/apis.
//
//go:embed crds/*.yaml
var crds embed.FS

// CRDs returns the CustomResourceDefinitions of nodewright's API (Provisioner, EC2NodeClass,
// NodeClaim), one YAML file's contents per element, in file name order.
func CRDs() [][]byte {
	files, err := fs.Glob(crds, "crds/*.yaml")
	if err != nil {
		panic(err) // only a malformed pattern fails
	}
	out := make([][]byte, 0, len(files))
	for _, name := range files {
		data, err := crds.ReadFile(name)
		if err != nil {
			panic(err) // the file is embedded: reading it cannot fail
		}
		out = append(out, data)
	}
	return out
}
