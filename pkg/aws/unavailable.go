package aws

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// UnavailableOfferings remembers the offerings (instance type, zone, capacity type) that
// recently failed to launch for lack of capacity, so that they are neither offered nor tried
// again until their TTL (3 minutes by default) has passed on the injected clock.
type UnavailableOfferings struct {
	clock clock.PassiveClock
	ttl   time.Duration

	mu    sync.Mutex
	until map[offeringKey]time.Time
}

type offeringKey struct {
	instanceType, zone, capacityType string
}

// NewUnavailableOfferings returns an empty set whose entries last ttl.
func NewUnavailableOfferings(c clock.PassiveClock, ttl time.Duration) *UnavailableOfferings {
	return &UnavailableOfferings{clock: c, ttl: ttl, until: map[offeringKey]time.Time{}}
}

// MarkUnavailable makes the offering unavailable for the TTL from now.
func (u *UnavailableOfferings) MarkUnavailable(instanceType, zone, capacityType string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.until[offeringKey{instanceType, zone, capacityType}] = u.clock.Now().Add(u.ttl)
}

// IsUnavailable reports whether the offering was marked less than the TTL ago.
func (u *UnavailableOfferings) IsUnavailable(instanceType, zone, capacityType string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	key := offeringKey{instanceType, zone, capacityType}
	until, ok := u.until[key]
	if !ok {
		return false
	}
	if !u.clock.Now().Before(until) {
		delete(u.until, key)
		return false
	}
	return true
}
