package scheduler

import (
	"fmt"
	"sync/atomic"

	"k8s.io/client-go/tools/cache"
)

var informerSeq atomic.Int64

// newInformerName reserves a unique informer name: client-go allows each name once at a time
// per process, and several schedulers may run in one test binary.
func newInformerName() (*cache.InformerName, error) {
	return cache.NewInformerName(fmt.Sprintf("nodewright-scheduler-%d", informerSeq.Add(1)))
}
