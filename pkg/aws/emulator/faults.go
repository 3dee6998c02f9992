package emulator

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Call is one API request the emulator received.
type Call struct {
	// Service is "ec2", "ssm", "pricing" or "sqs".
	Service string
	// Operation is the action or operation name, e.g. "CreateFleet".
	Operation string
	// Params are the request's parameters, flattened as EC2's query protocol names them
	// ("LaunchTemplateConfigs.1.Overrides.2.InstanceType"); JSON requests are flattened the
	// same way, lists counting from 1 ("Filters.1.Field").
	Params map[string]string
	// ErrorCode is the AWS error code the call was answered with; empty on success.
	ErrorCode string
	// Time is when the call arrived, by the emulator's clock.
	Time time.Time
}

// poolKey names a capacity pool; an empty field matches any value in fault rules.
type poolKey struct {
	instanceType, zone, capacityType string
}

type spotOverride struct {
	price float64
	since time.Time
}

// faults are the failures injected through the control API.
type faults struct {
	insufficient  map[poolKey]bool
	throttle      map[string]int
	fail          map[string]failRule
	latency       map[string]time.Duration
	neverJoinNext int
	spotPrices    map[[2]string]spotOverride
	// joinTaints are added to every Node that registers (see JoinWithTaints).
	joinTaints []corev1.Taint
	// throttleFraction is the probability that a call of an operation is throttled (see
	// ThrottleFraction); the operation "" stands for every operation without a rule of its own.
	throttleFraction map[string]float64
}

func newFaults() faults {
	return faults{
		insufficient:     map[poolKey]bool{},
		throttle:         map[string]int{},
		throttleFraction: map[string]float64{},
		fail:             map[string]failRule{},
		latency:          map[string]time.Duration{},
		spotPrices:       map[[2]string]spotOverride{},
	}
}

// insufficientCapacity reports whether a rule makes the pool fail.
func (f *faults) insufficientCapacity(instanceType, zone, capacityType string) bool {
	for k := range f.insufficient {
		if (k.instanceType == "" || k.instanceType == instanceType) &&
			(k.zone == "" || k.zone == zone) &&
			(k.capacityType == "" || k.capacityType == capacityType) {
			return true
		}
	}
	return false
}

// InsufficientCapacity makes launches in the pool (instanceType, zone, capacityType) fail with
// InsufficientInstanceCapacity until ClearInsufficientCapacity. An empty argument matches any
// type, zone or capacity type ("spot" or "on-demand").
func (e *Emulator) InsufficientCapacity(instanceType, zone, capacityType string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state.faults.insufficient[poolKey{instanceType, zone, capacityType}] = true
}

// ClearInsufficientCapacity removes the rule InsufficientCapacity set with the same arguments.
func (e *Emulator) ClearInsufficientCapacity(instanceType, zone, capacityType string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.state.faults.insufficient, poolKey{instanceType, zone, capacityType})
}

// Throttle makes the next n calls of operation (e.g. "CreateFleet", "GetParameter") fail as
// the service throttles: RequestLimitExceeded with HTTP 503 for EC2, ThrottlingException for
// SSM and Pricing, RequestThrottled for SQS. The SDK's retryer retries them. n <= 0 clears.
func (e *Emulator) Throttle(operation string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if n <= 0 {
		delete(e.state.faults.throttle, operation)
		return
	}
	e.state.faults.throttle[operation] = n
}

// ThrottleFraction makes each call of operation from now on fail as Throttle's do with
// probability fraction, drawn from Options.Rand: a service under sustained load rather than a
// burst of refusals. Operation "" applies to every operation of every service; an operation's
// own fraction wins over it. Calls that Throttle still counts are throttled first and draw
// nothing. fraction <= 0 clears the rule of operation.
func (e *Emulator) ThrottleFraction(operation string, fraction float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if fraction <= 0 {
		delete(e.state.faults.throttleFraction, operation)
		return
	}
	e.state.faults.throttleFraction[operation] = fraction
}

// throttledByChance draws whether ThrottleFraction throttles this call of op. It draws from
// e.rand only when a rule applies, so that the rules shift the seeded IDs and addresses only
// while they are set. Callers hold e.mu.
func (e *Emulator) throttledByChance(op string) bool {
	fraction, ok := e.state.faults.throttleFraction[op]
	if !ok {
		fraction = e.state.faults.throttleFraction[""]
	}
	return fraction > 0 && e.rand.Float64() < fraction
}

// failRule makes the next n calls of an operation fail with code.
type failRule struct {
	code string
	n    int
}

// Fail makes the next n calls of operation (e.g. "CreateFleet") fail with the error code
// code and HTTP 400, as AWS refuses a request it will refuse again (UnauthorizedOperation, a
// missing permission; InvalidParameterValue): the SDK's retryer does not retry them. n <= 0
// clears.
func (e *Emulator) Fail(operation, code string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if n <= 0 {
		delete(e.state.faults.fail, operation)
		return
	}
	e.state.faults.fail[operation] = failRule{code: code, n: n}
}

// SetLatency delays every answer to operation by d, by the emulator's clock; operation ""
// delays every operation (an operation's own latency wins). d <= 0 clears.
func (e *Emulator) SetLatency(operation string, d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if d <= 0 {
		delete(e.state.faults.latency, operation)
		return
	}
	e.state.faults.latency[operation] = d
}

// SetSpotPrice overrides the modelled spot price of a pool from now on (see ModelSpotPrice).
func (e *Emulator) SetSpotPrice(instanceType, zone string, price float64) error {
	if _, ok := ModelSpotPrice(instanceType, zone); !ok {
		return fmt.Errorf("no spot pool %s in %s", instanceType, zone)
	}
	if price <= 0 {
		return fmt.Errorf("spot price %v is not positive", price)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state.faults.spotPrices[[2]string{instanceType, zone}] = spotOverride{price: price, since: e.now()}
	return nil
}

// SpotPrice returns the spot price of a pool now, with any SetSpotPrice override, and when it
// took effect; ok is false where there is no spot pool.
func (e *Emulator) SpotPrice(instanceType, zone string) (price float64, since time.Time, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.spotPrice(instanceType, zone)
}

// spotPrice is SpotPrice for callers holding e.mu. A modelled price dates from the start of
// the current hour.
func (e *Emulator) spotPrice(instanceType, zone string) (float64, time.Time, bool) {
	price, ok := ModelSpotPrice(instanceType, zone)
	if !ok {
		return 0, time.Time{}, false
	}
	if o, ok := e.state.faults.spotPrices[[2]string{instanceType, zone}]; ok {
		return o.price, o.since, true
	}
	return price, e.now().Truncate(time.Hour), true
}

// NeverJoin keeps the given instances from ever registering a Node.
func (e *Emulator) NeverJoin(instanceIDs ...string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range instanceIDs {
		inst, ok := e.state.instances[id]
		if !ok {
			return fmt.Errorf("no instance %s", id)
		}
		inst.NeverJoin = true
	}
	return nil
}

// NeverJoinNext makes the next n instances launched never register a Node.
func (e *Emulator) NeverJoinNext(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state.faults.neverJoinNext = max(0, n)
}

// JoinWithTaints makes every Node that registers from now on carry taints besides those of
// its user data, as an image whose bootstrap adds its own --register-with-taints would: a
// node that differs from what was planned for it. No taints turns it off.
func (e *Emulator) JoinWithTaints(taints ...corev1.Taint) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state.faults.joinTaints = slices.Clone(taints)
}

// Calls returns every API call received so far, in order.
func (e *Emulator) Calls() []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Call, len(e.state.calls))
	for i, c := range e.state.calls {
		c.Params = maps.Clone(c.Params)
		out[i] = c
	}
	return out
}

// CallsOf returns the calls of one operation, in order.
func (e *Emulator) CallsOf(operation string) []Call {
	var out []Call
	for _, c := range e.Calls() {
		if c.Operation == operation {
			out = append(out, c)
		}
	}
	return out
}

// ResetCalls forgets the calls received so far.
func (e *Emulator) ResetCalls() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state.callBase += len(e.state.calls)
	e.state.calls = nil
}

// admit records a call and applies the faults that come before serving it: latency, then
// throttling, then the answer to an operation the emulator does not implement. It returns the
// call's index for finishCall.
func (e *Emulator) admit(ctx context.Context, service, op string, p map[string]string, implemented bool) (int, *apiError) {
	e.mu.Lock()
	e.state.calls = append(e.state.calls, Call{Service: service, Operation: op, Params: p, Time: e.now()})
	call := e.state.callBase + len(e.state.calls) - 1
	delay, ok := e.state.faults.latency[op]
	if !ok {
		delay = e.state.faults.latency[""]
	}
	e.mu.Unlock()

	if delay > 0 {
		select {
		case <-e.clock.After(delay):
		case <-ctx.Done():
			apiErr := errInternal("the request was cancelled during injected latency")
			e.finishCall(call, apiErr)
			return call, apiErr
		}
	}

	e.mu.Lock()
	var apiErr *apiError
	switch {
	case e.state.invalid != nil:
		apiErr = errInternal("the emulator's options are invalid: %v", e.state.invalid)
	case e.state.faults.throttle[op] > 0:
		e.state.faults.throttle[op]--
		apiErr = throttleError(service)
	case e.throttledByChance(op):
		apiErr = throttleError(service)
	case e.state.faults.fail[op].n > 0:
		rule := e.state.faults.fail[op]
		rule.n--
		e.state.faults.fail[op] = rule
		apiErr = errCode(rule.code, "The emulator was told to fail %s.", op)
	case !implemented:
		apiErr = unknownOperation(service, op)
	}
	e.mu.Unlock()
	if apiErr != nil {
		e.finishCall(call, apiErr)
	}
	return call, apiErr
}

// finishCall records the error code a call was answered with.
func (e *Emulator) finishCall(call int, apiErr *apiError) {
	if apiErr == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// The calls may have been reset since this one arrived.
	if i := call - e.state.callBase; i >= 0 && i < len(e.state.calls) {
		e.state.calls[i].ErrorCode = apiErr.Code
	}
}

// requestID draws a request ID in AWS's UUID form.
func (e *Emulator) requestID() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.uuid()
}

// uuid draws a random UUID. Callers hold e.mu.
func (e *Emulator) uuid() string {
	a, b := e.rand.Uint64(), e.rand.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xfff, 0x8000|(b>>48)&0x3fff, b&0xffffffffffff)
}
