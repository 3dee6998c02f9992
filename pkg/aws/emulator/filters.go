package emulator

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
)

// filter is one EC2 filter: the resource matches when any value matches.
type filter struct {
	name   string
	values []string
}

// filters reads Filter.N.Name and Filter.N.Value.M. Every name must be in allowed, where an
// entry ending in ":" ("tag:") allows any name with that prefix; EC2 answers an unknown
// filter with InvalidParameterValue.
func (p params) filters(allowed ...string) ([]filter, *apiError) {
	var out []filter
	for _, f := range p.structs("Filter") {
		name := f["Name"]
		if name == "" {
			return nil, errInvalidValue("The filter name must not be empty")
		}
		if !filterAllowed(name, allowed) {
			return nil, errInvalidValue("The filter '%s' is invalid", name)
		}
		values := f.list("Value")
		if len(values) == 0 {
			return nil, errInvalidValue("The filter '%s' requires at least one value", name)
		}
		out = append(out, filter{name: name, values: values})
	}
	return out, nil
}

func filterAllowed(name string, allowed []string) bool {
	for _, a := range allowed {
		if name == a || (strings.HasSuffix(a, ":") && strings.HasPrefix(name, a) && len(name) > len(a)) {
			return true
		}
	}
	return false
}

// matchFilters reports whether a resource passes every filter; values returns the resource's
// values for a filter name. Filter values may hold the wildcards * and ?.
func matchFilters(filters []filter, values func(name string) []string) bool {
	for _, f := range filters {
		if !matchAny(f.values, values(f.name)) {
			return false
		}
	}
	return true
}

func matchAny(patterns, values []string) bool {
	for _, pattern := range patterns {
		for _, v := range values {
			if glob(pattern, v) {
				return true
			}
		}
	}
	return false
}

// glob matches s against an EC2 filter pattern: * is any run of characters, ? any one, and a
// backslash escapes the next character.
func glob(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if glob(pattern[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			pattern, s = pattern[1:], s[1:]
			continue
		case '\\':
			if len(pattern) > 1 {
				pattern = pattern[1:]
			}
		}
		if s == "" || s[0] != pattern[0] {
			return false
		}
		pattern, s = pattern[1:], s[1:]
	}
	return s == ""
}

// tagValues answers the tag filters: tag:<key> (the key's value), tag-key (every key) and
// tag-value (every value). ok is false for other names.
func tagValues(name string, tags map[string]string) (values []string, ok bool) {
	switch {
	case strings.HasPrefix(name, "tag:"):
		if v, has := tags[strings.TrimPrefix(name, "tag:")]; has {
			return []string{v}, true
		}
		return nil, true
	case name == "tag-key":
		return sortedKeys(tags), true
	case name == "tag-value":
		for _, k := range sortedKeys(tags) {
			values = append(values, tags[k])
		}
		return values, true
	}
	return nil, false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// paginate returns one page of all: MaxResults must lie in [lo, hi]; without it the page
// holds def results, or everything when def is 0. The NextToken is opaque to clients; it
// binds the operation, the offset and the rest of the request, and anything else answers
// InvalidPaginationToken, as a token used with other parameters does on EC2.
func paginate[T any](p params, op string, all []T, lo, hi, def int) ([]T, string, *apiError) {
	size := def
	n, ok, apiErr := p.integer("MaxResults", lo, hi)
	if apiErr != nil {
		return nil, "", apiErr
	}
	if ok {
		size = n
	}
	if size == 0 {
		size = len(all)
	}
	offset := 0
	fingerprint := requestFingerprint(p)
	if token, ok := p["NextToken"]; ok {
		offset, ok = parseToken(token, op, fingerprint)
		if !ok || offset > len(all) {
			return nil, "", errCode("InvalidPaginationToken", "The specified pagination token is not valid or is expired.")
		}
	}
	end := min(offset+size, len(all))
	next := ""
	if end < len(all) {
		next = makeToken(op, end, fingerprint)
	}
	return all[offset:end], next, nil
}

// requestFingerprint hashes the parameters other than the pagination ones.
func requestFingerprint(p params) uint64 {
	h := fnv.New64a()
	for _, k := range sortedKeys(p) {
		if k == "NextToken" || k == "MaxResults" {
			continue
		}
		_, _ = fmt.Fprintf(h, "%s=%s&", k, p[k])
	}
	return h.Sum64()
}

func makeToken(op string, offset int, fingerprint uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%s|%d|%x", op, offset, fingerprint)))
}

func parseToken(token, op string, fingerprint uint64) (int, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, false
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 3 || parts[0] != op || parts[2] != strconv.FormatUint(fingerprint, 16) {
		return 0, false
	}
	offset, err := strconv.Atoi(parts[1])
	if err != nil || offset < 0 {
		return 0, false
	}
	return offset, true
}
