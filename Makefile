# nodewright's build. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
BIN := $(CURDIR)/bin
# kwok plays the kubelets in the sandbox. It is built from its own module (go install
# pkg@version), so its dependencies never meet ours.
KWOK_VERSION := v0.8.0
# The control-plane binaries are built from the versions go.mod pins; they are rebuilt when
# go.mod changes (go's build cache makes an unchanged rebuild a link step).
CONTROL_PLANE := $(BIN)/etcd $(BIN)/kube-apiserver $(BIN)/kube-controller-manager
# kubectl, of the same release, for the tutorial by hand and the tests that drive it (and
# `kubectl kustomize` for manifests/).
KUBECTL := $(BIN)/kubectl
KWOK := $(BIN)/kwok $(BIN)/kwok-stages.yaml
# helm renders and lints charts/nodewright. It is a `tool` of its own module, hack/tools/helm,
# so its dependencies never meet ours; it is stamped as helm's release build stamps itself
# (its version, and the Kubernetes version of its client-go for `helm template`'s defaults).
HELM := $(BIN)/helm
# The kwok stages nodewright runs with: nodes become Ready and keep a lease, pods run and go.
KWOK_STAGES := node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
	pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml

# Version stamps: kube-scheduler and the control plane report the Kubernetes release they are
# built from (kubectl warns about version skew against "v0.0.0-master").
KUBE_VERSION := $(shell $(GO) list -m -f '{{.Version}}' k8s.io/kubernetes)
GIT_COMMIT := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) -X k8s.io/component-base/version.gitCommit=$(GIT_COMMIT)

TEST_FLAGS ?=
INTEGRATION_TIMEOUT ?= 30m

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: generate
generate: ## Generate the deepcopy code of pkg/apis and the CRDs in manifests/crds (controller-gen), and docs/api.md (hack/apidocs).
	rm -f manifests/crds/*.yaml
	$(GO) tool controller-gen object paths=./pkg/apis/... crd paths=./pkg/apis/... output:crd:artifacts:config=manifests/crds
	$(GO) run ./hack/apidocs -pkg pkg/apis/v1alpha1 -out docs/api.md

.PHONY: build
build: ## Build bin/nodewright-scheduler and bin/nodewright.
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/nodewright-scheduler ./cmd/scheduler
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/nodewright ./cmd/nodewright

.PHONY: tools
tools: $(CONTROL_PLANE) $(KWOK) $(KUBECTL) $(HELM) ## Build etcd, kube-apiserver, kube-controller-manager, kwok, kubectl and helm into bin/ (skips what is built).

$(BIN)/etcd: go.mod go.sum
	$(GO) build -o $@ ./internal/etcd

$(BIN)/kube-apiserver: go.mod go.sum
	$(GO) build -ldflags "-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION)" -o $@ k8s.io/kubernetes/cmd/kube-apiserver

$(BIN)/kube-controller-manager: go.mod go.sum
	$(GO) build -ldflags "-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION)" -o $@ k8s.io/kubernetes/cmd/kube-controller-manager

$(BIN)/kubectl: go.mod go.sum
	$(GO) build -ldflags "-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION)" -o $@ k8s.io/kubernetes/cmd/kubectl

$(BIN)/helm: hack/tools/helm/go.mod hack/tools/helm/go.sum
	helm=$$($(GO) -C hack/tools/helm list -m -f '{{.Version}}' helm.sh/helm/v3); \
	minor=$$($(GO) -C hack/tools/helm list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2); \
	$(GO) -C hack/tools/helm build -o $@ -ldflags "-X helm.sh/helm/v3/internal/version.version=$$helm \
		-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$$minor \
		-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$$minor" \
		helm.sh/helm/v3/cmd/helm

$(BIN)/kwok:
	GOBIN=$(BIN) $(GO) install sigs.k8s.io/kwok/cmd/kwok@$(KWOK_VERSION)

$(BIN)/kwok-stages.yaml:
	@mkdir -p $(BIN)
	dir=$$($(GO) mod download -json sigs.k8s.io/kwok@$(KWOK_VERSION) | sed -n 's/.*"Dir": "\(.*\)",/\1/p'); \
	for f in $(KWOK_STAGES); do echo "---"; cat "$$dir/kustomize/stage/$$f"; done > $@.tmp
	mv $@.tmp $@

.PHONY: test
test: test-unit test-integration bench-quick soak-quick ## Run the unit tests (with -race), the integration tests, the benchmarks in quick mode and the 3-minute chaos soak.

.PHONY: test-unit
test-unit: ## Run the unit tests with the race detector.
	$(call summarized,$(BIN)/test-unit.log,$(GO) test -race $(TEST_FLAGS) $$($(GO) list ./... | grep -v /test/integration))

.PHONY: test-integration
test-integration: build tools ## Run the integration tests against a real control plane and kwok.
	$(call summarized,$(BIN)/test-integration.log,NODEWRIGHT_BIN_DIR=$(BIN) $(GO) test -p 1 -count=1 -timeout $(INTEGRATION_TIMEOUT) $(TEST_FLAGS) ./test/integration/...)

# summarized runs a go test command ($(2)), its output also in a log ($(1)), and when it fails
# repeats what failed at the end: the failed tests, any panic or timeout, and the first lines
# the failed tests printed from their test files (their errors come before the dumps a
# failing test writes as it ends), which a failed test's logs (thousands of lines) would
# otherwise bury far above the last lines a CI run shows.
define summarized
	@echo '$(2)'; mkdir -p $(BIN); status=0; $(2) 2>&1 | tee $(1) || status=$$?; \
	if [ $$status -ne 0 ]; then \
		echo "== what failed (the whole output is in $(1)):"; \
		grep -E -e '--- FAIL|^FAIL|^panic:|test timed out' $(1) || true; \
		echo "== the failed tests' first lines (not their logs):"; \
		grep -E -e '^\s+[a-z0-9_]+_test\.go:[0-9]+: ' $(1) | grep -v -E '_test\.go:[0-9]+: [IWE][0-9]{4} ' | head -n 40 || true; \
	fi; exit $$status
endef

.PHONY: verify
verify: ## Check formatting, go vet, staticcheck, that go mod tidy changes nothing and that generated files are up to date.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) mod tidy -diff
	$(MAKE) --no-print-directory generate
	@git diff --exit-code -- manifests/crds pkg/apis docs/api.md || { echo "generated files are stale: run make generate and commit the result"; exit 1; }
	@out=$$(git ls-files --others --exclude-standard -- manifests/crds 'pkg/apis/**/zz_generated.*.go' docs/api.md); \
	if [ -n "$$out" ]; then echo "generated files are not committed:"; echo "$$out"; exit 1; fi

# The image `make image` builds. Push it where the cluster pulls from, and set it in the
# Deployment (kustomize edit set image) or the chart (image.repository, image.tag).
IMAGE ?= nodewright-scheduler:$(shell sed -n 's/^appVersion: "\(.*\)"$$/\1/p' charts/nodewright/Chart.yaml)
DOCKER ?= docker

.PHONY: image
image: ## Build the container image of nodewright-scheduler with Docker (IMAGE=name:tag; needs a Docker engine).
	$(DOCKER) build --build-arg GIT_COMMIT=$(GIT_COMMIT) -t $(IMAGE) .

.PHONY: demo
demo: build $(CONTROL_PLANE) $(KWOK) ## Run the seed tutorial on the local sandbox, narrated, and stop (see docs/demo.md).
	$(BIN)/nodewright sandbox demo

# Benchmarks (issue 8, hack/bench). The full run writes docs/benchmarks.{json,md,png}; the
# quick mode (BENCH_QUICK=1, `make bench-quick`, for CI) only proves that everything runs:
# small counts, one run, the report in bin/bench/. BENCH_PLAN selects Plan sub-benchmarks
# (catalog=<c>/<mix>-<pods>); BENCH_NOTE is printed above the figures, the markdown file
# BENCH_NOTES after them.
BENCH_RAW := $(BIN)/bench
ifeq ($(BENCH_QUICK),1)
BENCH_PLAN ?= Plan/./diverse-100$$
BENCH_COUNT ?= 1
BENCH_E2E_FLAGS ?= -pods 100 -runs 1 -timeout 2m -overhead-nodes 10 -overhead-pods 200 -overhead-runs 1 -rss-nodes 50 \
	-consolidation-from 100 -consolidation-to 30 -consolidate-after 10s -consolidation-quiet 40s -karpenter-pods 100 -wave-runs 1
BENCH_DOCS ?= $(BENCH_RAW)
else
BENCH_PLAN ?= Plan
BENCH_COUNT ?= 5
BENCH_E2E_FLAGS ?= -pods 1000 -runs 5 -timeout 10m
BENCH_DOCS ?= docs
endif
BENCH_NOTE ?=
BENCH_NOTES ?=
BENCH_PLAN_CMD = $(GO) test -run '^$$' -bench '$(BENCH_PLAN)' -benchtime 1x -count $(BENCH_COUNT) -timeout 0 ./pkg/plan/
BENCH_E2E_CMD = $(GO) run ./hack/bench e2e $(BENCH_E2E_FLAGS)

.PHONY: bench
bench: build tools ## Run the benchmarks and write docs/benchmarks.{json,md,png} (BENCH_QUICK=1: a quick check, see bench-quick).
	@mkdir -p $(BENCH_RAW) $(BENCH_DOCS)
	$(BENCH_PLAN_CMD) | tee $(BENCH_RAW)/plan.txt
	NODEWRIGHT_BIN_DIR=$(BIN) $(BENCH_E2E_CMD) -out $(BENCH_RAW)/e2e.json
	$(GO) run ./hack/bench report -plan $(BENCH_RAW)/plan.txt -e2e $(BENCH_RAW)/e2e.json -docs $(BENCH_DOCS) \
		-plan-command "$(BENCH_PLAN_CMD)" -e2e-command "$(BENCH_E2E_CMD)" -note "$(BENCH_NOTE)" -notes "$(BENCH_NOTES)"

.PHONY: bench-quick
bench-quick: ## Prove in a few minutes that every benchmark runs (small counts, one run; report in bin/bench/).
	$(MAKE) --no-print-directory bench BENCH_QUICK=1

# The chaos soak (issue 19, hack/bench/soak.go): a seeded workload scaled at random on the
# sandbox under EC2 and process faults, its invariants (leaked instances, double launches,
# stranded pods, PDB violations, stuck cordons, the limit) checked throughout; it fails on
# any violation. `make soak` runs it for SOAK_DURATION and writes docs/reliability.{json,md};
# `make soak-quick` (in `make test`) runs three minutes, its report in bin/soak/.
SOAK_DURATION ?= 30m
SOAK_SEED ?= 1
SOAK_FLAGS ?=
SOAK_CMD = $(GO) run ./hack/bench soak -seed $(SOAK_SEED)

.PHONY: soak
soak: build tools ## Run the 30-minute chaos soak (SOAK_DURATION, SOAK_SEED) and write docs/reliability.{json,md}.
	NODEWRIGHT_BIN_DIR=$(BIN) $(SOAK_CMD) -duration $(SOAK_DURATION) $(SOAK_FLAGS) -out docs/reliability.json -markdown docs/reliability.md

.PHONY: soak-quick
soak-quick: build tools ## Run the chaos soak for 3 minutes, its faults more often (report in bin/soak/).
	@mkdir -p $(BIN)/soak
	NODEWRIGHT_BIN_DIR=$(BIN) $(SOAK_CMD) -duration 3m -kill-every 1m -max-pods 60 -strand-bound 2m $(SOAK_FLAGS) \
		-out $(BIN)/soak/soak.json -markdown $(BIN)/soak/reliability.md

.PHONY: clean
clean: ## Remove bin/.
	rm -rf $(BIN)
