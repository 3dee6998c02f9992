package lifecycle

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// The backoff of a failing launch: the first retry comes launchRetryBase after the first
// failure, and each failure doubles the wait, up to launchRetryMax. With the default
// LaunchTimeout of 5 minutes, a claim that never launches is tried 11 times.
const (
	launchRetryBase = time.Second
	launchRetryMax  = time.Minute
)

// launchBackoff spaces out the launch attempts of failing NodeClaims. It is kept in memory,
// by claim name, with the claim's UID so that a claim made again under the same name starts
// afresh: a new leader tries every claim at once again, while the bound on failing
// (Options.LaunchTimeout) is counted from the Launched condition, which the API keeps. It
// is safe for concurrent use by the launch workers.
type launchBackoff struct {
	mu     sync.Mutex
	claims map[string]launchRetry
}

// launchRetry is the backoff of one claim.
type launchRetry struct {
	uid      types.UID
	failures int
	next     time.Time
}

func newLaunchBackoff() *launchBackoff {
	return &launchBackoff{claims: map[string]launchRetry{}}
}

// wait returns how long the next launch attempt of nc must wait after now; 0 if it may go.
func (b *launchBackoff) wait(nc *v1alpha1.NodeClaim, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.claims[nc.Name]
	if !ok || r.uid != nc.UID || !now.Before(r.next) {
		return 0
	}
	return r.next.Sub(now)
}

// failed records a failed launch attempt of nc at now and returns how long until the next:
// the backoff's delay, but never past deadline, when the last attempt is due.
func (b *launchBackoff) failed(nc *v1alpha1.NodeClaim, now, deadline time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.claims[nc.Name]
	if r.uid != nc.UID {
		r = launchRetry{uid: nc.UID}
	}
	delay := launchRetryMax
	if r.failures < 16 { // 2^16 s is well past launchRetryMax, and the shift cannot overflow
		delay = min(launchRetryBase<<r.failures, launchRetryMax)
	}
	r.failures++
	if until := deadline.Sub(now); until < delay {
		delay = max(until, 0)
	}
	r.next = now.Add(delay)
	b.claims[nc.Name] = r
	return delay
}

// forget drops the backoff of the claim named name: it launched, or is gone.
func (b *launchBackoff) forget(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.claims, name)
}
