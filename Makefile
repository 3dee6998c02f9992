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
generate: ## Generate the deepcopy code of pkg/apis and the CRDs in manifests/crds with controller-gen.
	rm -f manifests/crds/*.yaml
	$(GO) tool controller-gen object paths=./pkg/apis/... crd paths=./pkg/apis/... output:crd:artifacts:config=manifests/crds

.PHONY: build
build: ## Build bin/nodewright-scheduler and bin/nodewright.
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/nodewright-scheduler ./cmd/scheduler
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/nodewright ./cmd/nodewright

.PHONY: tools
tools: $(CONTROL_PLANE) $(KWOK) $(KUBECTL) ## Build etcd, kube-apiserver, kube-controller-manager, kwok and kubectl into bin/ (skips what is built).

$(BIN)/etcd: go.mod go.sum
	$(GO) build -o $@ ./internal/etcd

$(BIN)/kube-apiserver: go.mod go.sum
	$(GO) build -ldflags "-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION)" -o $@ k8s.io/kubernetes/cmd/kube-apiserver

$(BIN)/kube-controller-manager: go.mod go.sum
	$(GO) build -ldflags "-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION)" -o $@ k8s.io/kubernetes/cmd/kube-controller-manager

$(BIN)/kubectl: go.mod go.sum
	$(GO) build -ldflags "-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION)" -o $@ k8s.io/kubernetes/cmd/kubectl

$(BIN)/kwok:
	GOBIN=$(BIN) $(GO) install sigs.k8s.io/kwok/cmd/kwok@$(KWOK_VERSION)

$(BIN)/kwok-stages.yaml:
	@mkdir -p $(BIN)
	dir=$$($(GO) mod download -json sigs.k8s.io/kwok@$(KWOK_VERSION) | sed -n 's/.*"Dir": "\(.*\)",/\1/p'); \
	for f in $(KWOK_STAGES); do echo "---"; cat "$$dir/kustomize/stage/$$f"; done > $@.tmp
	mv $@.tmp $@

.PHONY: test
test: test-unit test-integration ## Run the unit tests (with -race) and the integration tests.

.PHONY: test-unit
test-unit: ## Run the unit tests with the race detector.
	$(GO) test -race $(TEST_FLAGS) $$($(GO) list ./... | grep -v /test/integration)

.PHONY: test-integration
test-integration: build tools ## Run the integration tests against a real control plane and kwok.
	NODEWRIGHT_BIN_DIR=$(BIN) $(GO) test -count=1 -timeout $(INTEGRATION_TIMEOUT) $(TEST_FLAGS) ./test/integration/...

.PHONY: verify
verify: ## Check formatting, go vet, staticcheck, that go mod tidy changes nothing and that generated files are up to date.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	$(GO) mod tidy -diff
	$(MAKE) --no-print-directory generate
	@git diff --exit-code -- manifests/crds pkg/apis || { echo "generated files are stale: run make generate and commit the result"; exit 1; }
	@out=$$(git ls-files --others --exclude-standard -- manifests/crds 'pkg/apis/**/zz_generated.*.go'); \
	if [ -n "$$out" ]; then echo "generated files are not committed:"; echo "$$out"; exit 1; fi

.PHONY: demo
demo: build tools ## Start the local sandbox and schedule a pod on it (see README).
	$(BIN)/nodewright sandbox demo

.PHONY: clean
clean: ## Remove bin/.
	rm -rf $(BIN)
