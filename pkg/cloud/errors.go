package cloud

import (
	"errors"
	"fmt"
)

// NotFoundError says an instance does not exist (any more).
type NotFoundError struct{ ProviderID string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("instance %s not found", e.ProviderID) }

// InsufficientCapacityError says no allowed offering has capacity now. Offerings lists the
// ones tried, as "type/zone/capacity-type".
type InsufficientCapacityError struct {
	Offerings []string
	Err       error
}

func (e *InsufficientCapacityError) Error() string {
	msg := fmt.Sprintf("insufficient capacity in %d offering(s)", len(e.Offerings))
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *InsufficientCapacityError) Unwrap() error { return e.Err }

// NodeClassNotReadyError says an EC2NodeClass cannot be used yet: Reason names what is
// missing, such as the selector that matched nothing.
type NodeClassNotReadyError struct {
	NodeClass string
	Reason    string
}

func (e *NodeClassNotReadyError) Error() string {
	return fmt.Sprintf("node class %q is not ready: %s", e.NodeClass, e.Reason)
}

// IsNotFound reports whether err, or an error it wraps, is a NotFoundError.
func IsNotFound(err error) bool {
	var target *NotFoundError
	return errors.As(err, &target)
}

// IsInsufficientCapacity reports whether err, or an error it wraps, is an
// InsufficientCapacityError.
func IsInsufficientCapacity(err error) bool {
	var target *InsufficientCapacityError
	return errors.As(err, &target)
}

// IsNodeClassNotReady reports whether err, or an error it wraps, is a NodeClassNotReadyError.
func IsNodeClassNotReady(err error) bool {
	var target *NodeClassNotReadyError
	return errors.As(err, &target)
}
