#!/usr/bin/env bash
# Pins k8s.io/kubernetes and every k8s.io staging module it replaces to one release.
#
# k8s.io/kubernetes is not meant to be imported: its go.mod replaces each staging module
# (k8s.io/api, k8s.io/client-go, ...) with a path inside its own tree, and those replaces do
# not apply to a module that imports it. This script reads that replace block from the pinned
# release and writes the matching "replace k8s.io/X => k8s.io/X v0.MINOR.PATCH" lines into our
# go.mod, so the two never drift apart. Run it after changing KUBERNETES_VERSION, then commit.
#
# Usage: hack/update-gomod.sh [v1.37.2]
set -euo pipefail

cd "$(dirname "$0")/.."
version="${1:-$(go list -m -f '{{.Version}}' k8s.io/kubernetes 2>/dev/null || echo v1.37.2)}"
staging="v0.${version#v1.}"

go mod edit -require="k8s.io/kubernetes@${version}"
dir=$(go mod download -json "k8s.io/kubernetes@${version}" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
[ -n "$dir" ] || { echo "cannot find k8s.io/kubernetes@${version} in the module cache" >&2; exit 1; }

mods=$(sed -n 's#^\s*\(k8s.io/[a-z0-9.-]*\) => \./staging/.*#\1#p' "$dir/go.mod")
[ -n "$mods" ] || { echo "no staging replaces found in $dir/go.mod" >&2; exit 1; }

args=()
for m in $mods; do
  args+=("-replace=${m}=${m}@${staging}")
done
go mod edit "${args[@]}"
go mod tidy
echo "pinned k8s.io/kubernetes ${version} and $(echo "$mods" | wc -l) staging modules at ${staging}"
