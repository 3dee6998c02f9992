#!/usr/bin/env bash
# Pins k8s.io/kubernetes and every k8s.io staging module it replaces to one release.
#
# k8s.io/kubernetes is not meant to be imported: its go.mod requires each staging module
# (k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and replaces it with a path inside its own
# tree, and replaces do not apply to a module that imports it. This script reads that replace
# block from the pinned release's go.mod and writes the matching
# "k8s.io/X => k8s.io/X v0.MINOR.PATCH" block into ours, so the two never drift apart.
# Run it after choosing a new release, then commit go.mod and go.sum.
#
# Usage: hack/update-gomod.sh [v1.37.2]   (default: the release go.mod requires now)
set -euo pipefail

cd "$(dirname "$0")/.."
version="${1:-$(go list -m -f '{{.Version}}' k8s.io/kubernetes)}"
[[ "$version" =~ ^v1\.[0-9]+\.[0-9]+$ ]] || { echo "not a Kubernetes release: $version" >&2; exit 1; }
staging="v0.${version#v1.}"

dir=$(go mod download -json "k8s.io/kubernetes@${version}" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
[ -n "$dir" ] || { echo "cannot download k8s.io/kubernetes@${version}" >&2; exit 1; }
mods=$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9.-]*\) => \./staging/.*#\1#p' "$dir/go.mod")
[ -n "$mods" ] || { echo "no staging replaces in $dir/go.mod" >&2; exit 1; }

# Drop the old pins, then write the new ones as one block.
drops=()
for m in $(go mod edit -json | sed -n 's#.*"Path": "\(k8s.io/[a-z0-9.-]*\)".*#\1#p' | sort -u); do
  drops+=("-dropreplace=$m")
done
[ ${#drops[@]} -eq 0 ] || go mod edit "${drops[@]}"
{
  echo
  echo "// Kept by hack/update-gomod.sh: the staging modules of k8s.io/kubernetes ${version}."
  echo "replace ("
  for m in $mods; do printf '\t%s => %s %s\n' "$m" "$m" "$staging"; done
  echo ")"
} >> go.mod
go mod edit -fmt
go mod edit -require="k8s.io/kubernetes@${version}"
go mod tidy

# Direct requirements of staging modules read v0.0.0 (what k8s.io/kubernetes asks for); show
# the version actually used instead.
reqs=()
for m in $mods; do
  if [ "$(go list -m -f "{{.Version}}" "$m" 2>/dev/null)" = "v0.0.0" ]; then
    reqs+=("-require=$m@$staging")
  fi
done
[ ${#reqs[@]} -eq 0 ] || { go mod edit "${reqs[@]}"; go mod tidy; }
echo "pinned k8s.io/kubernetes ${version} and $(echo "$mods" | wc -l) staging modules at ${staging}"
