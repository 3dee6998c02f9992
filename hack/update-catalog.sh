#!/usr/bin/env bash
# Regenerates pkg/aws/catalog/instance-types.json from the shared EC2 data set, which lives in
# ../shared/data next to the repository, and the local NVMe extract pkg/aws/catalog/local-nvme.txt
# (see pkg/aws/catalog/README.md for their sources). Run it after either changes, then commit
# the result; `go test ./pkg/aws/catalog` fails while the embedded copy differs from what this
# script would write. The README says how to refresh the extract from Karpenter's reference.
#
# Usage: hack/update-catalog.sh [path/to/ec2-instance-types.json]
set -euo pipefail

cd "$(dirname "$0")/.."
src="${1:-../shared/data/ec2-instance-types.json}"
[ -f "$src" ] || { echo "no shared data set at $src" >&2; exit 1; }

go run ./hack/catalog-gen -src "$src" -local-nvme pkg/aws/catalog/local-nvme.txt -out pkg/aws/catalog/instance-types.json
echo "wrote pkg/aws/catalog/instance-types.json ($(grep -c '"name"' pkg/aws/catalog/instance-types.json) instance types) from $src"
