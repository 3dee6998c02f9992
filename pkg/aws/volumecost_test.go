package aws

import (
	"math"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/nodewright/nodewright/pkg/apis/v1alpha1"
)

// TestVolumesCost: the hourly price of a node's volumes, from the node class's block device
// mappings as the launch template gets them.
func TestVolumesCost(t *testing.T) {
	gib := func(n int64) *resource.Quantity { return resource.NewQuantity(n<<30, resource.BinarySI) }
	for _, tc := range []struct {
		name     string
		family   v1alpha1.AMIFamily
		mappings []v1alpha1.BlockDeviceMapping
		want     float64 // USD per month
	}{
		{"default root volume: 20 GiB gp3", v1alpha1.AMIFamilyAL2023, nil, 20 * 0.08},
		{"Bottlerocket: 4 + 20 GiB gp3", v1alpha1.AMIFamilyBottlerocket, nil, 24 * 0.08},
		{"100 GiB gp3 with 6,000 IOPS and 250 MiB/s", "", []v1alpha1.BlockDeviceMapping{{DeviceName: "/dev/xvda",
			EBS: &v1alpha1.BlockDevice{VolumeSize: gib(100), VolumeType: new("gp3"), IOPS: new(int64(6000)), Throughput: new(int64(250))}}},
			100*0.08 + 3000*0.005 + 125*0.04},
		{"io2, 50 GiB, 1,000 IOPS", "", []v1alpha1.BlockDeviceMapping{{DeviceName: "/dev/xvda",
			EBS: &v1alpha1.BlockDevice{VolumeSize: gib(50), VolumeType: new("io2"), IOPS: new(int64(1000))}}}, 50*0.125 + 1000*0.065},
		{"no type: gp2", "", []v1alpha1.BlockDeviceMapping{{DeviceName: "/dev/xvda", EBS: &v1alpha1.BlockDevice{VolumeSize: gib(30)}}}, 30 * 0.10},
		{"a size from its snapshot: not counted", "", []v1alpha1.BlockDeviceMapping{{DeviceName: "/dev/xvda",
			EBS: &v1alpha1.BlockDevice{SnapshotID: new("snap-0123")}}}, 0},
	} {
		got := volumesCost(blockDeviceMappings(tc.family, tc.mappings))
		if want := tc.want / 730; math.Abs(got-want) > 1e-12 {
			t.Errorf("%s: %.6f USD/h, want %.6f", tc.name, got, want)
		}
	}
}
