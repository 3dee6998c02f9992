package cloud

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestAllocatable(t *testing.T) {
	it := &InstanceType{
		Capacity: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("2"),
			corev1.ResourceMemory: resource.MustParse("8Gi"),
			corev1.ResourcePods:   resource.MustParse("29"),
		},
		Overhead: Overhead{
			KubeReserved:      corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("70m"), corev1.ResourceMemory: resource.MustParse("574Mi")},
			SystemReserved:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("100Mi")},
			EvictionThreshold: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("100Mi")},
		},
	}
	got := it.Allocatable()
	want := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1830m"),  // 2000m - 70m - 100m
		corev1.ResourceMemory: resource.MustParse("7418Mi"), // 8192Mi - 574Mi - 100Mi - 100Mi
		corev1.ResourcePods:   resource.MustParse("29"),
	}
	for name, w := range want {
		if g := got[name]; g.Cmp(w) != 0 {
			t.Errorf("allocatable %s = %s, want %s", name, g.String(), w.String())
		}
	}

	// An overhead bigger than the capacity leaves nothing, not a negative amount.
	tiny := &InstanceType{
		Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
		Overhead: Overhead{SystemReserved: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m")}},
	}
	if cpu := tiny.Allocatable()[corev1.ResourceCPU]; !cpu.IsZero() {
		t.Errorf("allocatable cpu = %s, want 0", cpu.String())
	}
}

func TestIsHelpers(t *testing.T) {
	errs := map[string]error{
		"notFound":     &NotFoundError{ProviderID: "aws:///us-east-1a/i-1"},
		"insufficient": &InsufficientCapacityError{Offerings: []string{"m5.large/us-east-1a/spot"}},
		"notReady":     &NodeClassNotReadyError{NodeClass: "default", Reason: "no subnet matches subnetSelector"},
		"other":        errors.New("boom"),
	}
	got := map[string][]bool{}
	for name, err := range errs {
		wrapped := fmt.Errorf("launching: %w", err)
		got[name] = []bool{IsNotFound(wrapped), IsInsufficientCapacity(wrapped), IsNodeClassNotReady(wrapped)}
	}
	want := map[string][]bool{
		"notFound":     {true, false, false},
		"insufficient": {false, true, false},
		"notReady":     {false, false, true},
		"other":        {false, false, false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("IsNotFound, IsInsufficientCapacity, IsNodeClassNotReady (-want, +got):\n%s", diff)
	}
}
