package framework

import (
	"testing"

	"k8s.io/component-base/metrics/legacyregistry"
)

// Counter returns the counter name of the series whose labels include every one of labels
// (nil: the first series, as for a counter without labels), 0 if there is none, as this
// process's registry has it: the in-process schedulers of a package's tests share it, so a
// test reads a counter before and after what it counts.
func Counter(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			matched := 0
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v == l.GetValue() {
					matched++
				}
			}
			if matched == len(labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
