package migrate

import (
	"encoding/json"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Warning is a field of a Karpenter object that the nodewright objects do not carry.
type Warning struct {
	// Source is where the object was read from: a file name, or "-" for stdin.
	Source string
	// Object is the Karpenter object, as kind/name.
	Object string
	// Path is the field's path in the object, e.g. spec.provider.launchTemplate.
	Path string
	// Reason says why the field is not carried over, and what to do about it if anything.
	Reason string
}

// String formats the warning as "source: Kind/name: path: reason".
func (w Warning) String() string {
	return fmt.Sprintf("%s: %s: %s: %s", w.Source, w.Object, w.Path, w.Reason)
}

// object is where the fields being read belong, and collects the warnings about them.
type object struct {
	source, name string
	warnings     []Warning
}

func (o *object) warn(path, format string, args ...any) {
	o.warnings = append(o.warnings, Warning{Source: o.source, Object: o.name, Path: path, Reason: fmt.Sprintf(format, args...)})
}

// fields reads a map of a Karpenter object decoded from JSON, removing each field it reads,
// so that what remains when done is called is what the conversion did not understand.
type fields struct {
	obj  *object
	path string
	m    map[string]any
}

func newFields(obj *object, path string, m map[string]any) *fields {
	return &fields{obj: obj, path: path, m: m}
}

func (f *fields) at(key string) string {
	if f.path == "" {
		return key
	}
	return f.path + "." + key
}

// warn reports key, read or not, with a reason.
func (f *fields) warn(key, format string, args ...any) {
	f.obj.warn(f.at(key), format, args...)
}

// take removes key and returns its value; a null value is absent.
func (f *fields) take(key string) (any, bool) {
	v, ok := f.m[key]
	delete(f.m, key)
	return v, ok && v != nil
}

// drop removes key, reporting it with reason if it was there.
func (f *fields) drop(key, format string, args ...any) {
	if _, ok := f.take(key); ok {
		f.warn(key, format, args...)
	}
}

// ignore removes key without a word: for fields that are not configuration.
func (f *fields) ignore(keys ...string) {
	for _, k := range keys {
		delete(f.m, k)
	}
}

// done reports every field that nothing read.
func (f *fields) done() {
	for _, k := range sortedKeys(f.m) {
		f.warn(k, "unknown field: not carried over")
	}
}

func (f *fields) str(key string) (string, bool) {
	v, ok := f.take(key)
	if !ok {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number, bool:
		return fmt.Sprint(v), true
	}
	f.warn(key, "not a string: not carried over")
	return "", false
}

func (f *fields) strPtr(key string) *string {
	if s, ok := f.str(key); ok {
		return &s
	}
	return nil
}

func (f *fields) int64Ptr(key string) *int64 {
	v, ok := f.take(key)
	if !ok {
		return nil
	}
	var s string
	switch v := v.(type) {
	case json.Number:
		s = v.String()
	case string:
		s = v
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f.warn(key, "not an integer: not carried over")
		return nil
	}
	return &n
}

func (f *fields) int32Ptr(key string) *int32 {
	n := f.int64Ptr(key)
	if n == nil {
		return nil
	}
	if int64(int32(*n)) != *n {
		f.warn(key, "out of range: not carried over")
		return nil
	}
	v := int32(*n)
	return &v
}

func (f *fields) boolPtr(key string) *bool {
	v, ok := f.take(key)
	if !ok {
		return nil
	}
	b, isBool := v.(bool)
	if !isBool {
		f.warn(key, "not a boolean: not carried over")
		return nil
	}
	return &b
}

// object removes key and returns its fields, nil if absent or not an object.
func (f *fields) object(key string) *fields {
	v, ok := f.take(key)
	if !ok {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		f.warn(key, "not an object: not carried over")
		return nil
	}
	return newFields(f.obj, f.at(key), m)
}

// objects removes key and returns the fields of each of its items.
func (f *fields) objects(key string) []*fields {
	v, ok := f.take(key)
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	if !isList {
		f.warn(key, "not a list: not carried over")
		return nil
	}
	var out []*fields
	for i, item := range list {
		path := fmt.Sprintf("%s[%d]", f.at(key), i)
		m, isMap := item.(map[string]any)
		if !isMap {
			f.obj.warn(path, "not an object: not carried over")
			continue
		}
		out = append(out, newFields(f.obj, path, m))
	}
	return out
}

func (f *fields) strings(key string) []string {
	v, ok := f.take(key)
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	if !isList {
		f.warn(key, "not a list: not carried over")
		return nil
	}
	var out []string
	for i, item := range list {
		switch item := item.(type) {
		case string:
			out = append(out, item)
		case json.Number:
			out = append(out, item.String())
		default:
			f.obj.warn(fmt.Sprintf("%s[%d]", f.at(key), i), "not a string: not carried over")
		}
	}
	return out
}

// stringMap removes key and returns it as a map of strings, in which numbers and booleans
// become their text as YAML would have it.
func (f *fields) stringMap(key string) map[string]string {
	v, ok := f.take(key)
	if !ok {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		f.warn(key, "not an object: not carried over")
		return nil
	}
	out := make(map[string]string, len(m))
	for _, k := range sortedKeys(m) {
		switch v := m[k].(type) {
		case string:
			out[k] = v
		case json.Number, bool:
			out[k] = fmt.Sprint(v)
		default:
			f.obj.warn(f.at(key)+"."+k, "not a string: not carried over")
		}
	}
	return out
}

// resources removes key and returns it as a resource list.
func (f *fields) resources(key string) corev1.ResourceList {
	m := f.stringMap(key)
	if m == nil {
		return nil
	}
	out := make(corev1.ResourceList, len(m))
	for _, name := range sortedKeys(m) {
		q, err := resource.ParseQuantity(m[name])
		if err != nil {
			f.obj.warn(f.at(key)+"."+name, "not a quantity: not carried over")
			continue
		}
		out[corev1.ResourceName(name)] = q
	}
	return out
}

// quantity removes key and returns it as a quantity.
func (f *fields) quantity(key string) *resource.Quantity {
	s, ok := f.str(key)
	if !ok {
		return nil
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		f.warn(key, "not a quantity: not carried over")
		return nil
	}
	return &q
}
