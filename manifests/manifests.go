// Package manifests embeds the files of this directory that nodewright's binaries need at
// run time, so a binary works wherever it is copied.
package manifests

import _ "embed"

// SchedulerConfig is scheduler-config.yaml: the KubeSchedulerConfiguration of
// nodewright-scheduler, as shipped.
//
//go:embed scheduler-config.yaml
var SchedulerConfig []byte
