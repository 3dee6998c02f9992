package plan

import (
	"sort"
	"strconv"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// addTo adds b to a, in place.
func addTo(a, b v1.ResourceList) {
	for name, q := range b {
		sum := a[name]
		sum.Add(q)
		a[name] = sum
	}
}

// sum returns the sum of the lists.
func sum(lists ...v1.ResourceList) v1.ResourceList {
	out := v1.ResourceList{}
	for _, l := range lists {
		addTo(out, l)
	}
	return out
}

// sortedNames returns the resource names of l, sorted.
func sortedNames(l v1.ResourceList) []v1.ResourceName {
	names := make([]v1.ResourceName, 0, len(l))
	for name := range l {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	return names
}

// quantityString formats q for people: cpu in cores with up to 3 decimals ("191.4"), other
// resources as Kubernetes quantities.
func quantityString(name v1.ResourceName, q resource.Quantity) string {
	if name == v1.ResourceCPU {
		return strconv.FormatFloat(float64(q.MilliValue())/1000, 'f', -1, 64)
	}
	return q.String()
}

// exceeds returns the first resource of limits that used plus add would exceed, or "".
func exceeds(limits, used, add v1.ResourceList) v1.ResourceName {
	for _, name := range sortedNames(limits) {
		total := used[name].DeepCopy()
		total.Add(add[name])
		if total.Cmp(limits[name]) > 0 {
			return name
		}
	}
	return ""
}

// millis are the amounts of the resources nearly every pod requests, in thousandths of
// their units, as hasRoom compares them; other is true when a list holds another resource
// that is not zero.
type millis struct {
	cpu, memory, ephemeral, pods int64
	other                        bool
}

// millisOf returns the millis of l.
func millisOf(l v1.ResourceList) millis {
	var m millis
	for name, q := range l {
		switch name {
		case v1.ResourceCPU:
			m.cpu = q.MilliValue()
		case v1.ResourceMemory:
			m.memory = q.MilliValue()
		case v1.ResourceEphemeralStorage:
			m.ephemeral = q.MilliValue()
		case v1.ResourcePods:
			m.pods = q.MilliValue()
		default:
			m.other = m.other || !q.IsZero()
		}
	}
	return m
}

// fitsIn reports whether requests m fit in free less used, as hasRoom decides it for these
// resources: a resource not requested fits whatever is left of it.
func (m millis) fitsIn(free, used millis) bool {
	fits := func(req, free, used int64) bool { return req == 0 || req <= free-used }
	return fits(m.cpu, free.cpu, used.cpu) && fits(m.memory, free.memory, used.memory) &&
		fits(m.ephemeral, free.ephemeral, used.ephemeral) && fits(m.pods, free.pods, used.pods)
}
