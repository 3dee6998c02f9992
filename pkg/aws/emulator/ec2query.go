package emulator

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ec2APIVersion is the only Version EC2's query protocol accepts here, the SDK's.
const ec2APIVersion = "2016-11-15"

// ec2Handler serves one EC2 action: it reads the flattened query parameters and returns the
// response body (whose fields go inside <ActionResponse>) or an AWS error.
type ec2Handler func(e *Emulator, p params) (ec2Response, *apiError)

// ec2Response is a response body; its embedded responseMeta carries the request ID.
type ec2Response interface {
	setRequestID(id string)
}

// responseMeta is embedded first in every EC2 response body.
type responseMeta struct {
	RequestID string `xml:"requestId"`
}

func (m *responseMeta) setRequestID(id string) { m.RequestID = id }

// ec2Actions are the implemented EC2 actions. Anything else answers InvalidAction.
var ec2Actions = map[string]ec2Handler{
	"DescribeInstanceTypes":         (*Emulator).describeInstanceTypes,
	"DescribeInstanceTypeOfferings": (*Emulator).describeInstanceTypeOfferings,
	"DescribeAvailabilityZones":     (*Emulator).describeAvailabilityZones,
	"DescribeSpotPriceHistory":      (*Emulator).describeSpotPriceHistory,
	"DescribeSubnets":               (*Emulator).describeSubnets,
	"DescribeSecurityGroups":        (*Emulator).describeSecurityGroups,
	"DescribeImages":                (*Emulator).describeImages,
	"CreateLaunchTemplate":          (*Emulator).createLaunchTemplate,
	"DescribeLaunchTemplates":       (*Emulator).describeLaunchTemplates,
	"DeleteLaunchTemplate":          (*Emulator).deleteLaunchTemplate,
	"CreateFleet":                   (*Emulator).createFleet,
	"DescribeInstances":             (*Emulator).describeInstances,
	"TerminateInstances":            (*Emulator).terminateInstances,
	"CreateTags":                    (*Emulator).createTags,
}

// Operations returns the operations the emulator implements, by service ("ec2", "ssm",
// "pricing", "sqs"), sorted. Any other operation answers InvalidAction (EC2) or
// UnknownOperationException (the JSON services).
func Operations() map[string][]string {
	out := map[string][]string{serviceEC2: sortedKeys(ec2Actions)}
	for _, svc := range jsonServices {
		out[svc.name] = sortedKeys(svc.operations)
	}
	return out
}

// serveEC2 serves EC2's query protocol: a form POST with Action and Version, answered with
// XML, errors as <Response><Errors><Error>.
func (e *Emulator) serveEC2(w http.ResponseWriter, r *http.Request) {
	requestID := e.requestID()
	if r.Method != http.MethodPost {
		writeEC2Error(w, requestID, &apiError{Code: "InvalidHttpRequest", Message: "The emulator accepts only POST requests", Status: http.StatusBadRequest})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeEC2Error(w, requestID, errMalformed("the request body is not a form: %v", err))
		return
	}
	p := params{}
	for k, vs := range r.PostForm {
		if len(vs) > 0 {
			p[k] = vs[len(vs)-1]
		}
	}
	action := p["Action"]
	delete(p, "Action")
	version := p["Version"]
	delete(p, "Version")

	handler, ok := ec2Actions[action]
	call, apiErr := e.admit(r.Context(), serviceEC2, action, p.record(), ok)
	if apiErr != nil {
		writeEC2Error(w, requestID, apiErr)
		return
	}
	var resp ec2Response
	apiErr = func() *apiError {
		switch {
		case version == "":
			return errMissing("Version")
		case version != ec2APIVersion:
			return &apiError{Code: "InvalidParameterValue", Message: fmt.Sprintf("Invalid API version %q; the emulator speaks %s", version, ec2APIVersion), Status: http.StatusBadRequest}
		case p["DryRun"] == "true":
			return &apiError{Code: "DryRunOperation", Message: "Request would have succeeded, but DryRun flag is set.", Status: http.StatusPreconditionFailed}
		}
		delete(p, "DryRun")
		var err *apiError
		resp, err = handler(e, p)
		return err
	}()
	e.finishCall(call, apiErr)
	if apiErr != nil {
		writeEC2Error(w, requestID, apiErr)
		return
	}
	resp.setRequestID(requestID)
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	start := xml.StartElement{
		Name: xml.Name{Local: action + "Response"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: "http://ec2.amazonaws.com/doc/" + ec2APIVersion + "/"}},
	}
	if err := xml.NewEncoder(&buf).EncodeElement(resp, start); err != nil {
		writeEC2Error(w, requestID, errInternal("encoding the response: %v", err))
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("X-Amzn-Requestid", requestID)
	_, _ = w.Write(buf.Bytes())
}

type ec2ErrorResponse struct {
	XMLName   xml.Name `xml:"Response"`
	Errors    []ec2Err `xml:"Errors>Error"`
	RequestID string   `xml:"RequestID"`
}

type ec2Err struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func writeEC2Error(w http.ResponseWriter, requestID string, apiErr *apiError) {
	body, _ := xml.Marshal(ec2ErrorResponse{Errors: []ec2Err{{Code: apiErr.Code, Message: apiErr.Message}}, RequestID: requestID})
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(apiErr.status())
	_, _ = w.Write(append([]byte(xml.Header), body...))
}

// params are the flattened query parameters of an EC2 request, e.g.
// "Filter.1.Name" -> "instance-type", "Filter.1.Value.1" -> "m5.*".
type params map[string]string

// record copies the parameters for Call.Params.
func (p params) record() map[string]string {
	return maps.Clone(p)
}

// has reports whether any parameter is key or starts with key + ".".
func (p params) has(key string) bool {
	if _, ok := p[key]; ok {
		return true
	}
	for k := range p {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

// indexes returns the sorted N of every "prefix.N" or "prefix.N.*" parameter.
func (p params) indexes(prefix string) []int {
	seen := map[int]bool{}
	var out []int
	for k := range p {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ".")
		i, err := strconv.Atoi(n)
		if err != nil || i < 1 || seen[i] {
			continue
		}
		seen[i] = true
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}

// list returns the values of "prefix.1", "prefix.2", ... in order.
func (p params) list(prefix string) []string {
	var out []string
	for _, i := range p.indexes(prefix) {
		if v, ok := p[prefix+"."+strconv.Itoa(i)]; ok {
			out = append(out, v)
		}
	}
	return out
}

// structs returns the members of a list of structures "prefix.N.Field", each as params
// keyed by "Field".
func (p params) structs(prefix string) []params {
	var out []params
	for _, i := range p.indexes(prefix) {
		out = append(out, p.sub(prefix+"."+strconv.Itoa(i)))
	}
	return out
}

// sub returns the members of the structure at prefix, keyed without "prefix.".
func (p params) sub(prefix string) params {
	out := params{}
	for k, v := range p {
		if rest, ok := strings.CutPrefix(k, prefix+"."); ok {
			out[rest] = v
		}
	}
	return out
}

// integer parses an optional integer parameter within [lo, hi]; ok is false when absent.
func (p params) integer(key string, lo, hi int) (n int, ok bool, apiErr *apiError) {
	v, present := p[key]
	if !present {
		return 0, false, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, false, errInvalidValue("Invalid value '%s' for %s. It must be an integer.", v, key)
	}
	if n < lo || n > hi {
		return 0, false, errInvalidValue("Value ( %d ) for parameter %s is invalid. It must be between %d and %d.", n, key, lo, hi)
	}
	return n, true, nil
}

// boolean parses an optional boolean parameter.
func (p params) boolean(key string) (value, ok bool, apiErr *apiError) {
	v, present := p[key]
	if !present {
		return false, false, nil
	}
	switch v {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	return false, false, errInvalidValue("Invalid value '%s' for %s. It must be true or false.", v, key)
}

// enum checks an optional parameter against its valid values.
func (p params) enum(key string, valid ...string) (string, *apiError) {
	v, present := p[key]
	if !present {
		return "", nil
	}
	for _, ok := range valid {
		if v == ok {
			return v, nil
		}
	}
	return "", errInvalidValue("Value (%s) for parameter %s is invalid. Valid values: %s", v, key, strings.Join(valid, ", "))
}

// timestamp parses an optional ISO 8601 timestamp parameter.
func (p params) timestamp(key string) (time.Time, bool, *apiError) {
	v, present := p[key]
	if !present {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, false, errInvalidValue("Invalid value '%s' for %s: not an ISO 8601 timestamp", v, key)
	}
	return t, true, nil
}

// ec2Time formats a timestamp as EC2's XML does.
func ec2Time(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// items is a list that EC2 writes as <name><item>...</item></name>.
type items[T any] []T

// MarshalXML writes the list's elements as <item>s inside the field's element.
func (l items[T]) MarshalXML(enc *xml.Encoder, start xml.StartElement) error {
	if err := enc.EncodeToken(start); err != nil {
		return err
	}
	for _, v := range l {
		if err := enc.EncodeElement(v, xml.StartElement{Name: xml.Name{Local: "item"}}); err != nil {
			return err
		}
	}
	return enc.EncodeToken(start.End())
}

// tagXML is an EC2 tag.
type tagXML struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

// tagSet renders tags sorted by key.
func tagSet(tags map[string]string) items[tagXML] {
	out := items[tagXML]{}
	for _, k := range sortedKeys(tags) {
		out = append(out, tagXML{Key: k, Value: tags[k]})
	}
	return out
}
