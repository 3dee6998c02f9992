package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// jsonHandler serves one operation of a JSON-protocol service: it decodes the request body and
// returns the response to encode, or an AWS error.
type jsonHandler func(e *Emulator, ctx context.Context, r *http.Request, body []byte) (any, *apiError)

// jsonService is a service on AWS's JSON protocols, addressed by X-Amz-Target "<prefix>.<Op>".
type jsonService struct {
	name        string
	contentType string
	// errorNamespace prefixes error types in __type ("com.amazonaws.sqs#"); empty for none.
	errorNamespace string
	operations     map[string]jsonHandler
}

// jsonServices are keyed by their X-Amz-Target prefix.
var jsonServices = map[string]*jsonService{
	"AmazonSSM": {name: serviceSSM, contentType: "application/x-amz-json-1.1", operations: map[string]jsonHandler{
		"GetParameter": (*Emulator).getParameter,
	}},
	"AWSPriceListService": {name: servicePricing, contentType: "application/x-amz-json-1.1", operations: map[string]jsonHandler{
		"GetProducts": (*Emulator).getProducts,
	}},
	"AmazonSQS": {name: serviceSQS, contentType: "application/x-amz-json-1.0", errorNamespace: "com.amazonaws.sqs#", operations: map[string]jsonHandler{
		"GetQueueUrl":    (*Emulator).getQueueURL,
		"SendMessage":    (*Emulator).sendMessage,
		"ReceiveMessage": (*Emulator).receiveMessage,
		"DeleteMessage":  (*Emulator).deleteMessage,
	}},
}

func (e *Emulator) serveJSON(w http.ResponseWriter, r *http.Request, target string) {
	requestID := e.requestID()
	prefix, op, _ := strings.Cut(target, ".")
	svc, ok := jsonServices[prefix]
	if !ok {
		svc = &jsonService{name: strings.ToLower(prefix), contentType: "application/x-amz-json-1.1"}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		writeJSONError(w, svc, requestID, &apiError{Code: "SerializationException", Message: "reading the request body: " + err.Error()})
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	var decoded any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&decoded); err != nil {
		writeJSONError(w, svc, requestID, &apiError{Code: "SerializationException", Message: "the request body is not JSON: " + err.Error()})
		return
	}
	recorded := map[string]string{}
	flatten("", decoded, recorded)

	handler, ok := svc.operations[op]
	call, apiErr := e.admit(r.Context(), svc.name, op, recorded, ok)
	if apiErr != nil {
		writeJSONError(w, svc, requestID, apiErr)
		return
	}
	resp, apiErr := handler(e, r.Context(), r, body)
	e.finishCall(call, apiErr)
	if apiErr != nil {
		writeJSONError(w, svc, requestID, apiErr)
		return
	}
	out, err := json.Marshal(resp)
	if err != nil {
		writeJSONError(w, svc, requestID, errInternal("encoding the response: %v", err))
		return
	}
	w.Header().Set("Content-Type", svc.contentType)
	w.Header().Set("X-Amzn-Requestid", requestID)
	_, _ = w.Write(out)
}

func writeJSONError(w http.ResponseWriter, svc *jsonService, requestID string, apiErr *apiError) {
	body, _ := json.Marshal(map[string]string{"__type": svc.errorNamespace + apiErr.Code, "message": apiErr.Message})
	w.Header().Set("Content-Type", svc.contentType)
	w.Header().Set("X-Amzn-Requestid", requestID)
	if apiErr.queryError != "" {
		w.Header().Set("X-Amzn-Query-Error", apiErr.queryError)
	}
	w.WriteHeader(apiErr.status())
	_, _ = w.Write(body)
}

// decodeJSON decodes a request body into v, answering SerializationException when it does not
// fit the operation's shape.
func decodeJSON(body []byte, v any) *apiError {
	if err := json.Unmarshal(body, v); err != nil {
		return &apiError{Code: "SerializationException", Message: fmt.Sprintf("the request does not match the operation's input: %v", err)}
	}
	return nil
}

// flatten writes a decoded JSON value as dotted keys: {"A":[{"B":1}]} -> "A.1.B" = "1".
func flatten(prefix string, v any, out map[string]string) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			flatten(join(k), child, out)
		}
	case []any:
		for i, child := range v {
			flatten(join(strconv.Itoa(i+1)), child, out)
		}
	case nil:
		out[prefix] = ""
	default:
		out[prefix] = fmt.Sprint(v)
	}
}
