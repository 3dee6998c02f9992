package emulator

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits and defaults of a standard SQS queue.
const (
	sqsVisibilityTimeout = 30 * time.Second
	sqsMaxBodyBytes      = 256 * 1024
)

type queue struct {
	name     string
	messages []*message
	// arrived is closed and replaced when a message is sent, to wake long polls.
	arrived chan struct{}
}

type message struct {
	id           string
	body         string
	attributes   map[string]messageAttribute
	sent         time.Time
	visibleAt    time.Time
	receiveCount int
	firstReceive time.Time
	handles      map[string]bool
}

// messageAttribute is an SQS message attribute, as the JSON protocol spells it.
type messageAttribute struct {
	DataType    string `json:"DataType"`
	StringValue string `json:"StringValue,omitempty"`
	BinaryValue []byte `json:"BinaryValue,omitempty"`
}

// sqsError is an SQS error with the query-compatible code the SDK reports for it.
func sqsError(code, queryCode, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...), queryError: queryCode + ";Sender"}
}

func sqsInvalid(format string, args ...any) *apiError {
	return sqsError("InvalidParameterValue", "InvalidParameterValue", format, args...)
}

func errNoQueue() *apiError {
	return sqsError("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
}

// queueURL is the URL of a queue as served from host.
func queueURL(host, name string) string {
	return "http://" + host + "/" + AccountID + "/" + name
}

// queueFromURL finds the queue a QueueUrl names by its path, /<account>/<name>, whatever its
// host. Callers hold e.mu.
func (e *Emulator) queueFromURL(raw *string) (*queue, *apiError) {
	if raw == nil || *raw == "" {
		return nil, sqsError("MissingParameter", "MissingParameter", "The request must contain the parameter QueueUrl.")
	}
	u, err := url.Parse(*raw)
	if err != nil {
		return nil, sqsError("InvalidAddress", "InvalidAddress", "The address %s is not valid for this endpoint.", *raw)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 || parts[0] != AccountID {
		return nil, errNoQueue()
	}
	q, ok := e.state.queues[parts[1]]
	if !ok {
		return nil, errNoQueue()
	}
	return q, nil
}

type getQueueURLRequest struct {
	QueueName              *string `json:"QueueName"`
	QueueOwnerAWSAccountID *string `json:"QueueOwnerAWSAccountId"`
}

func (e *Emulator) getQueueURL(_ context.Context, r *http.Request, body []byte) (any, *apiError) {
	var req getQueueURLRequest
	if apiErr := decodeJSON(body, &req); apiErr != nil {
		return nil, apiErr
	}
	if req.QueueName == nil || *req.QueueName == "" {
		return nil, sqsError("MissingParameter", "MissingParameter", "The request must contain the parameter QueueName.")
	}
	if req.QueueOwnerAWSAccountID != nil && *req.QueueOwnerAWSAccountID != AccountID {
		return nil, errNoQueue()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.state.queues[*req.QueueName]; !ok {
		return nil, errNoQueue()
	}
	return map[string]string{"QueueUrl": queueURL(r.Host, *req.QueueName)}, nil
}

type sendMessageRequest struct {
	QueueURL               *string                     `json:"QueueUrl"`
	MessageBody            *string                     `json:"MessageBody"`
	DelaySeconds           *int                        `json:"DelaySeconds"`
	MessageAttributes      map[string]messageAttribute `json:"MessageAttributes"`
	MessageGroupID         *string                     `json:"MessageGroupId"`
	MessageDeduplicationID *string                     `json:"MessageDeduplicationId"`
}

func (e *Emulator) sendMessage(_ context.Context, _ *http.Request, body []byte) (any, *apiError) {
	var req sendMessageRequest
	if apiErr := decodeJSON(body, &req); apiErr != nil {
		return nil, apiErr
	}
	if req.MessageBody == nil {
		return nil, sqsError("MissingParameter", "MissingParameter", "The request must contain the parameter MessageBody.")
	}
	if apiErr := validateBody(*req.MessageBody); apiErr != nil {
		return nil, apiErr
	}
	delay := 0
	if req.DelaySeconds != nil {
		if *req.DelaySeconds < 0 || *req.DelaySeconds > 900 {
			return nil, sqsInvalid("Value %d for parameter DelaySeconds is invalid. Reason: Must be >= 0 and <= 900.", *req.DelaySeconds)
		}
		delay = *req.DelaySeconds
	}
	if req.MessageGroupID != nil || req.MessageDeduplicationID != nil {
		return nil, sqsInvalid("The request include parameter that is not valid for this queue type")
	}
	for name, a := range req.MessageAttributes {
		if name == "" || !strings.HasPrefix(a.DataType, "String") && !strings.HasPrefix(a.DataType, "Number") && !strings.HasPrefix(a.DataType, "Binary") {
			return nil, sqsError("InvalidParameterValue", "InvalidParameterValue", "Message attribute '%s' has an invalid data type %q.", name, a.DataType)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	q, apiErr := e.queueFromURL(req.QueueURL)
	if apiErr != nil {
		return nil, apiErr
	}
	m := e.enqueue(q, *req.MessageBody, req.MessageAttributes, time.Duration(delay)*time.Second)
	resp := map[string]string{"MessageId": m.id, "MD5OfMessageBody": md5Hex([]byte(m.body))}
	if len(m.attributes) > 0 {
		resp["MD5OfMessageAttributes"] = attributesMD5(m.attributes)
	}
	return resp, nil
}

// validateBody applies SQS's rules on message bodies: size and the allowed characters.
func validateBody(body string) *apiError {
	if len(body) == 0 || len(body) > sqsMaxBodyBytes {
		return sqsInvalid("The message body must be between 1 and %d bytes long.", sqsMaxBodyBytes)
	}
	for _, r := range body {
		ok := r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
		if !ok || r == utf8.RuneError {
			return sqsError("InvalidMessageContents", "InvalidMessageContents", "Invalid binary character '#x%X' was found in the message body.", r)
		}
	}
	return nil
}

// enqueue adds a message to a queue and wakes its long polls. Callers hold e.mu.
func (e *Emulator) enqueue(q *queue, body string, attrs map[string]messageAttribute, delay time.Duration) *message {
	now := e.now()
	m := &message{id: e.uuid(), body: body, attributes: attrs, sent: now, visibleAt: now.Add(delay), handles: map[string]bool{}}
	q.messages = append(q.messages, m)
	if q.arrived != nil {
		close(q.arrived)
		q.arrived = nil
	}
	return m
}

type receiveMessageRequest struct {
	QueueURL                    *string  `json:"QueueUrl"`
	MaxNumberOfMessages         *int     `json:"MaxNumberOfMessages"`
	VisibilityTimeout           *int     `json:"VisibilityTimeout"`
	WaitTimeSeconds             *int     `json:"WaitTimeSeconds"`
	AttributeNames              []string `json:"AttributeNames"`
	MessageSystemAttributeNames []string `json:"MessageSystemAttributeNames"`
	MessageAttributeNames       []string `json:"MessageAttributeNames"`
}

type receivedMessage struct {
	MessageID              string                      `json:"MessageId"`
	ReceiptHandle          string                      `json:"ReceiptHandle"`
	MD5OfBody              string                      `json:"MD5OfBody"`
	Body                   string                      `json:"Body"`
	Attributes             map[string]string           `json:"Attributes,omitempty"`
	MD5OfMessageAttributes string                      `json:"MD5OfMessageAttributes,omitempty"`
	MessageAttributes      map[string]messageAttribute `json:"MessageAttributes,omitempty"`
}

type receiveMessageResponse struct {
	Messages []receivedMessage `json:"Messages,omitempty"`
}

func (e *Emulator) receiveMessage(ctx context.Context, _ *http.Request, body []byte) (any, *apiError) {
	var req receiveMessageRequest
	if apiErr := decodeJSON(body, &req); apiErr != nil {
		return nil, apiErr
	}
	limit, visibility, wait := 1, sqsVisibilityTimeout, time.Duration(0)
	if n := req.MaxNumberOfMessages; n != nil {
		if *n < 1 || *n > 10 {
			return nil, sqsInvalid("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", *n)
		}
		limit = *n
	}
	if v := req.VisibilityTimeout; v != nil {
		if *v < 0 || *v > 43200 {
			return nil, sqsInvalid("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200, if provided.", *v)
		}
		visibility = time.Duration(*v) * time.Second
	}
	if w := req.WaitTimeSeconds; w != nil {
		if *w < 0 || *w > 20 {
			return nil, sqsInvalid("Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20.", *w)
		}
		wait = time.Duration(*w) * time.Second
	}
	systemAttrs := append(append([]string{}, req.AttributeNames...), req.MessageSystemAttributeNames...)
	e.mu.Lock()
	deadline := e.now().Add(wait)
	e.mu.Unlock()
	for {
		e.mu.Lock()
		q, apiErr := e.queueFromURL(req.QueueURL)
		if apiErr != nil {
			e.mu.Unlock()
			return nil, apiErr
		}
		now := e.now()
		var out []receivedMessage
		next := deadline
		for _, m := range q.messages {
			if len(out) == limit {
				break
			}
			if now.Before(m.visibleAt) {
				if m.visibleAt.Before(next) {
					next = m.visibleAt
				}
				continue
			}
			out = append(out, e.deliver(m, now, visibility, systemAttrs, req.MessageAttributeNames))
		}
		if len(out) > 0 || !now.Before(deadline) {
			e.mu.Unlock()
			return receiveMessageResponse{Messages: out}, nil
		}
		if q.arrived == nil {
			q.arrived = make(chan struct{})
		}
		arrived := q.arrived
		e.mu.Unlock()
		select {
		case <-arrived:
		case <-e.clock.After(next.Sub(now)):
		case <-ctx.Done():
			return receiveMessageResponse{}, nil
		}
	}
}

// deliver hands a message out: a new receipt handle, invisible for the visibility timeout.
// Callers hold e.mu.
func (e *Emulator) deliver(m *message, now time.Time, visibility time.Duration, systemAttrs, attrNames []string) receivedMessage {
	m.receiveCount++
	if m.firstReceive.IsZero() {
		m.firstReceive = now
	}
	m.visibleAt = now.Add(visibility)
	handle := base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%s:%d:%s", m.id, m.receiveCount, e.newID(""))))
	m.handles[handle] = true
	out := receivedMessage{MessageID: m.id, ReceiptHandle: handle, MD5OfBody: md5Hex([]byte(m.body)), Body: m.body}
	all := map[string]string{
		"SenderId":                         AccountID,
		"SentTimestamp":                    strconv.FormatInt(m.sent.UnixMilli(), 10),
		"ApproximateReceiveCount":          strconv.Itoa(m.receiveCount),
		"ApproximateFirstReceiveTimestamp": strconv.FormatInt(m.firstReceive.UnixMilli(), 10),
	}
	for _, name := range systemAttrs {
		for k, v := range all {
			if name == "All" || name == k {
				if out.Attributes == nil {
					out.Attributes = map[string]string{}
				}
				out.Attributes[k] = v
			}
		}
	}
	for name, a := range m.attributes {
		for _, want := range attrNames {
			if want == "All" || want == ".*" || want == name || strings.HasSuffix(want, ".*") && strings.HasPrefix(name, strings.TrimSuffix(want, "*")) {
				if out.MessageAttributes == nil {
					out.MessageAttributes = map[string]messageAttribute{}
				}
				out.MessageAttributes[name] = a
			}
		}
	}
	if len(out.MessageAttributes) > 0 {
		out.MD5OfMessageAttributes = attributesMD5(out.MessageAttributes)
	}
	return out
}

type deleteMessageRequest struct {
	QueueURL      *string `json:"QueueUrl"`
	ReceiptHandle *string `json:"ReceiptHandle"`
}

// deleteMessage deletes by any receipt handle the message was given; a well-formed handle of a
// message already deleted succeeds, as on a standard queue.
func (e *Emulator) deleteMessage(_ context.Context, _ *http.Request, body []byte) (any, *apiError) {
	var req deleteMessageRequest
	if apiErr := decodeJSON(body, &req); apiErr != nil {
		return nil, apiErr
	}
	if req.ReceiptHandle == nil || *req.ReceiptHandle == "" {
		return nil, sqsError("MissingParameter", "MissingParameter", "The request must contain the parameter ReceiptHandle.")
	}
	raw, err := base64.StdEncoding.DecodeString(*req.ReceiptHandle)
	if err != nil || strings.Count(string(raw), ":") != 2 {
		return nil, sqsError("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", "The input receipt handle \"%s\" is not a valid receipt handle.", *req.ReceiptHandle)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	q, apiErr := e.queueFromURL(req.QueueURL)
	if apiErr != nil {
		return nil, apiErr
	}
	for i, m := range q.messages {
		if m.handles[*req.ReceiptHandle] {
			q.messages = append(q.messages[:i], q.messages[i+1:]...)
			break
		}
	}
	return struct{}{}, nil
}

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// attributesMD5 is SQS's digest of message attributes: for each attribute, sorted by name,
// the length-prefixed name, data type, a transport byte (1 string, 2 binary) and value.
func attributesMD5(attrs map[string]messageAttribute) string {
	var buf []byte
	put := func(b []byte) {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(b)))
		buf = append(buf, b...)
	}
	for _, name := range sortedKeys(attrs) {
		a := attrs[name]
		put([]byte(name))
		put([]byte(a.DataType))
		if strings.HasPrefix(a.DataType, "Binary") {
			buf = append(buf, 2)
			put(a.BinaryValue)
		} else {
			buf = append(buf, 1)
			put([]byte(a.StringValue))
		}
	}
	return md5Hex(buf)
}

// SendMessage puts a message on a queue, as an EventBridge rule would, and returns its ID.
func (e *Emulator) SendMessage(queueName, body string) (string, error) {
	if apiErr := validateBody(body); apiErr != nil {
		return "", apiErr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	q, ok := e.state.queues[queueName]
	if !ok {
		return "", fmt.Errorf("no queue %q", queueName)
	}
	return e.enqueue(q, body, nil, 0).id, nil
}

// QueueMessages returns the bodies of the messages a queue holds (received or not, until
// deleted), oldest first.
func (e *Emulator) QueueMessages(queueName string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	q, ok := e.state.queues[queueName]
	if !ok {
		return nil
	}
	out := make([]string, 0, len(q.messages))
	for _, m := range q.messages {
		out = append(out, m.body)
	}
	return out
}

// QueueURL returns the URL of a queue of a started emulator.
func (e *Emulator) QueueURL(queueName string) string {
	return queueURL(strings.TrimPrefix(e.url, "http://"), queueName)
}
