package emulator

import (
	"fmt"
	"net/http"
)

// Services, as Call.Service names them.
const (
	serviceEC2     = "ec2"
	serviceSSM     = "ssm"
	servicePricing = "pricing"
	serviceSQS     = "sqs"
)

// apiError is an AWS error response: its code, message and HTTP status. queryError is the
// x-amzn-query-error header of SQS's JSON protocol ("Code;Sender").
type apiError struct {
	Code       string
	Message    string
	Status     int
	queryError string
}

func (e *apiError) status() int {
	if e.Status == 0 {
		return http.StatusBadRequest
	}
	return e.Status
}

// Error makes apiError an error, for tests and logs.
func (e *apiError) Error() string {
	return e.Code + ": " + e.Message
}

func errInvalidValue(format string, args ...any) *apiError {
	return &apiError{Code: "InvalidParameterValue", Message: fmt.Sprintf(format, args...)}
}

func errCombination(format string, args ...any) *apiError {
	return &apiError{Code: "InvalidParameterCombination", Message: fmt.Sprintf(format, args...)}
}

func errMissing(param string) *apiError {
	return &apiError{Code: "MissingParameter", Message: fmt.Sprintf("The request must contain the parameter %s", param)}
}

func errMalformed(format string, args ...any) *apiError {
	return &apiError{Code: "MalformedQueryString", Message: fmt.Sprintf(format, args...)}
}

func errInternal(format string, args ...any) *apiError {
	return &apiError{Code: "InternalError", Message: fmt.Sprintf(format, args...), Status: http.StatusInternalServerError}
}

func errCode(code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

func errUnsupported(format string, args ...any) *apiError {
	return &apiError{Code: "Unsupported", Message: fmt.Sprintf(format, args...)}
}

// throttleError is what each service answers when it throttles a call: EC2 RequestLimitExceeded
// with HTTP 503, the JSON services ThrottlingException with HTTP 400, SQS RequestThrottled.
// The SDK's standard retryer retries all three.
func throttleError(service string) *apiError {
	switch service {
	case serviceEC2:
		return &apiError{Code: "RequestLimitExceeded", Message: "Request limit exceeded.", Status: http.StatusServiceUnavailable}
	case serviceSQS:
		return &apiError{Code: "RequestThrottled", Message: "Rate exceeded", queryError: "RequestThrottled;Sender"}
	}
	return &apiError{Code: "ThrottlingException", Message: "Rate exceeded"}
}

// unknownOperation is each protocol's answer to an operation the emulator does not implement.
func unknownOperation(service, op string) *apiError {
	if service == serviceEC2 {
		if op == "" {
			return &apiError{Code: "MissingAction", Message: "The request must contain the parameter Action"}
		}
		return &apiError{Code: "InvalidAction", Message: fmt.Sprintf("The action %s is not valid for this web service.", op)}
	}
	return &apiError{Code: "UnknownOperationException", Message: fmt.Sprintf("The operation %s is not implemented by the emulator.", op)}
}
