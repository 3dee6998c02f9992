package aws

import (
	"errors"
	"strings"

	"github.com/aws/smithy-go"
)

// errorCode returns the AWS error code of err, or "" when it is not an API error.
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// isNotFound reports whether err is one of EC2's "does not exist" errors, such as
// InvalidInstanceID.NotFound or InvalidLaunchTemplateName.NotFoundException.
func isNotFound(err error) bool {
	code := errorCode(err)
	return strings.HasSuffix(code, ".NotFound") || strings.HasSuffix(code, "NotFoundException") || code == "ParameterNotFound"
}

// insufficientCapacityCodes are the CreateFleet error codes that say a pool has no capacity
// for now, as opposed to a request that can never succeed.
var insufficientCapacityCodes = map[string]bool{
	"InsufficientInstanceCapacity":         true,
	"InsufficientHostCapacity":             true,
	"InsufficientReservedInstanceCapacity": true,
	"InsufficientCapacity":                 true,
	"MaxSpotInstanceCountExceeded":         true,
	"SpotMaxPriceTooLow":                   true,
	"UnfulfillableCapacity":                true,
	"Unsupported":                          true,
	"InsufficientFreeAddressesInSubnet":    true,
}
