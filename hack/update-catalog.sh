#!/usr/bin/env bash
# Regenerates pkg/aws/catalog/instance-types.json from the shared EC2 data set, which lives in
# ../shared/data next to the repository (see pkg/aws/catalog/README.md for its sources). Run it
# after the shared data changes, then commit the result; `go test ./pkg/aws/catalog` fails
# while the embedded copy differs from what this script would write.
#
# Usage: hack/update-catalog.sh [path/to/ec2-instance-types.json]
set -euo pipefail

cd "$(dirname "$0")/.."
src="${1:-../shared/data/ec2-instance-types.json}"
[ -f "$src" ] || { echo "no shared data set at $src" >&2; exit 1; }

go run ./hack/catalog-gen -src "$src" -out pkg/aws/catalog/instance-types.json
echo "wrote pkg/aws/catalog/instance-types.json ($(grep -c '"name"' pkg/aws/catalog/instance-types.json) instance types) from $src"
