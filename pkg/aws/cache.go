package aws

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// ttlCache is a map whose entries expire ttl after they were set, by an injected clock.
type ttlCache[K comparable, V any] struct {
	clock clock.PassiveClock
	ttl   time.Duration

	mu      sync.Mutex
	entries map[K]ttlEntry[V]
}

type ttlEntry[V any] struct {
	value   V
	expires time.Time
}

func newTTLCache[K comparable, V any](c clock.PassiveClock, ttl time.Duration) *ttlCache[K, V] {
	return &ttlCache[K, V]{clock: c, ttl: ttl, entries: map[K]ttlEntry[V]{}}
}

// get returns the value of key if it is set and has not expired.
func (c *ttlCache[K, V]) get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !c.clock.Now().Before(e.expires) {
		delete(c.entries, key)
		var zero V
		return zero, false
	}
	return e.value, true
}

// set stores value under key for the cache's ttl.
func (c *ttlCache[K, V]) set(key K, value V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[key] = ttlEntry[V]{value: value, expires: c.clock.Now().Add(c.ttl)}
}
