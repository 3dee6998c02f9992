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
