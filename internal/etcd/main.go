// Command etcd is the etcd server, built from the go.etcd.io/etcd/server/v3 version that
// go.mod pins (the one k8s.io/kubernetes is tested with), for the local control plane of
// pkg/sandbox. `make tools` builds it into bin/etcd.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
