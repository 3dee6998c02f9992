package emulator

import (
	"context"
	"net/http"
	"strings"
)

type getParameterRequest struct {
	Name           *string `json:"Name"`
	WithDecryption *bool   `json:"WithDecryption"`
}

type ssmParameter struct {
	Name             string  `json:"Name"`
	Type             string  `json:"Type"`
	Value            string  `json:"Value"`
	Version          int     `json:"Version"`
	LastModifiedDate float64 `json:"LastModifiedDate"`
	ARN              string  `json:"ARN"`
	DataType         string  `json:"DataType"`
}

type getParameterResponse struct {
	Parameter ssmParameter `json:"Parameter"`
}

// getParameter answers the public AMI parameters (see publicAMIs) and Options.SSMParameters.
func (e *Emulator) getParameter(_ context.Context, _ *http.Request, body []byte) (any, *apiError) {
	var req getParameterRequest
	if apiErr := decodeJSON(body, &req); apiErr != nil {
		return nil, apiErr
	}
	if req.Name == nil || *req.Name == "" {
		return nil, &apiError{Code: "ValidationException", Message: "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"}
	}
	name := *req.Name
	// A parameter may be named by its ARN.
	if i := strings.Index(name, ":parameter/"); strings.HasPrefix(name, "arn:") && i >= 0 {
		name = name[i+len(":parameter"):]
	}
	if len(name) > 2048 {
		return nil, &apiError{Code: "ValidationException", Message: "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length less than or equal to 2048"}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	value, ok := e.state.ssm[name]
	if !ok {
		return nil, &apiError{Code: "ParameterNotFound", Message: ""}
	}
	dataType := "text"
	if strings.HasPrefix(value, "ami-") {
		dataType = "aws:ec2:image"
	}
	account := AccountID
	if strings.HasPrefix(name, "/aws/service/") {
		account = ""
	}
	return getParameterResponse{Parameter: ssmParameter{
		Name:             name,
		Type:             "String",
		Value:            value,
		Version:          1,
		LastModifiedDate: float64(amiCreationDate.Unix()),
		ARN:              "arn:aws:ssm:" + Region + ":" + account + ":parameter" + name,
		DataType:         dataType,
	}}, nil
}
