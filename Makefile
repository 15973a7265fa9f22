# AuthStack: the operator (cmd/manager) and the auth service (cmd/authserver).
# VERSION (x.y.z) is the release: the file of that name, or `make release VERSION=x.y.z`.
VERSION ?= $(shell cat VERSION)
IMG ?= ghcr.io/leanauth/authstack-operator:v$(VERSION)
AUTHSERVER_IMG ?= ghcr.io/leanauth/authserver:v$(VERSION)
# The version baked into both binaries (the operator derives its default authserver image from it).
LDFLAGS ?= -X main.version=v$(VERSION) -X github.com/leanauth/authstack/authserver/app.Version=v$(VERSION)
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.7.1

LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
KUBECTL ?= kubectl
GO_TEST_FLAGS ?=

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRD and RBAC manifests.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd webhook paths="./api/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac/manager
	go run ./hack/crd-ref > docs/reference.md

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## go fmt.
	go fmt ./...

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: test-deps
test-deps: ## Install or build what the tests need (PostgreSQL, Redis, pgbouncer, nginx, chromium, mailpit, Traefik, versitygw, jaeger, helm, kube-apiserver, etcd, the real node's programs, mmdebstrap), cached.
	hack/test-deps.sh >/dev/null
	hack/s3-test-server.sh >/dev/null
	hack/jaeger.sh >/dev/null
	hack/helm.sh >/dev/null
	hack/control-plane.sh kube-apiserver etcd >/dev/null
	hack/real-node.sh build

.PHONY: test
test: manifests generate build-installer vet test-deps ## Run every test against real servers (envtest, PostgreSQL, Redis, pgbouncer, SMTP, S3).
# envtest gives kube-apiserver 20 s to start by default: not enough with every package's tests starting one at once on 2 cores.
	KUBEBUILDER_ASSETS="$$(hack/control-plane.sh kube-apiserver etcd)" KUBEBUILDER_CONTROLPLANE_START_TIMEOUT=2m go test $(GO_TEST_FLAGS) ./... -count=1
	@git diff --exit-code --stat -- api config dist charts || { echo "generated files are stale (or not what make release renders for VERSION $(VERSION)): run make manifests generate build-installer and commit"; exit 1; }

.PHONY: bench
bench: ## Run the Go benchmarks of pure code.
	go test -run '^$$' -bench . -benchmem ./...

.PHONY: bench-operator
bench-operator: ## Operator scale benchmark on a private local cluster: 200 AuthStacks vs a plain client, peak RSS, writes at rest (docs/benchmarks.md).
	go run ./cmd/operatorbench

##@ Local cluster and demo

.PHONY: dev-cluster
dev-cluster: ## Start a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok fake node) on 127.0.0.1; prints the kubeconfig.
	hack/dev-cluster.sh up

.PHONY: dev-cluster-real
dev-cluster-real: ## The local control plane with one real node instead of kwok (root): containerd, kubelet, kube-proxy, CoreDNS, NetworkPolicy enforcement.
	hack/dev-cluster.sh up --real-node

.PHONY: dev-cluster-down
dev-cluster-down: ## Stop the local control plane (state kept in ~/.cache/authstack/dev-cluster).
	hack/dev-cluster.sh down

.PHONY: demo
demo: ## The whole product on this machine: local cluster (real node when possible, else kwok), operator, AuthStack Ready, then the real authserver walk.
	hack/demo.sh up

.PHONY: demo-down
demo-down: ## Stop everything make demo started (processes and the local cluster).
	hack/demo.sh down

.PHONY: test-e2e
test-e2e: manifests generate test-deps ## End-to-end tests on throw-away local clusters with the operator as a process: kwok (fast), then the real node (root).
	go test -tags e2e -count=1 -timeout 30m -v ./test/e2e/
	go test -tags realnode -count=1 -timeout 40m -v ./test/realnode/

.PHONY: test-images
test-images: ## Build the images without Docker (hack/images.sh) and run them with containerd and runc as the operator's pods do (root).
	go test -tags containerd -count=1 -timeout 20m -v -run TestImagesUnderContainerd ./internal/imagebuild/

##@ Build

.PHONY: build
build: generate ## Build the operator and authserver binaries into bin/, with VERSION baked in.
	CGO_ENABLED=0 go build -trimpath -ldflags="$(LDFLAGS)" -o $(LOCALBIN)/manager ./cmd/manager
	CGO_ENABLED=0 go build -trimpath -ldflags="$(LDFLAGS)" -o $(LOCALBIN)/authserver ./cmd/authserver

.PHONY: install-plugin
install-plugin: ## Install the kubectl authstack plugin (kubectl-authstack) into $(GOBIN), or PLUGIN_DIR=<dir>.
	@dir="$${PLUGIN_DIR:-$$(go env GOBIN)}"; dir="$${dir:-$$(go env GOPATH)/bin}"; mkdir -p "$$dir"; \
	CGO_ENABLED=0 go build -trimpath -ldflags="$(LDFLAGS)" -o "$$dir/kubectl-authstack" ./cmd/kubectl-authstack; \
	echo "installed $$dir/kubectl-authstack: run kubectl authstack status <name> (the directory must be on your PATH)"

.PHONY: run
run: manifests generate ## Run the operator against the cluster in your kubeconfig.
	go run ./cmd/manager --authserver-image=$(AUTHSERVER_IMG)

.PHONY: docker-build
docker-build: ## Build the operator and authserver images.
	docker build --target manager --build-arg VERSION=v$(VERSION) -t $(IMG) .
	docker build --target authserver --build-arg VERSION=v$(VERSION) -t $(AUTHSERVER_IMG) .

.PHONY: build-installer
build-installer: manifests generate kustomize ## Write dist/install.yaml (cluster-wide) and dist/install-namespaced.yaml (config/namespaced) for VERSION: the CRD, RBAC and the operator Deployment in one file each; and the Helm chart from them.
	mkdir -p dist
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	printf '%s\n' '# Written by make build-installer (make release): the default authserver image of this release.' \
		'- op: add' '  path: /spec/template/spec/containers/0/args/-' '  value: --authserver-image=$(AUTHSERVER_IMG)' \
		> config/manager/authserver_image_patch.yaml
	$(KUSTOMIZE) build config/default > dist/install.yaml
	$(KUSTOMIZE) build config/namespaced > dist/install-namespaced.yaml
	go run ./hack/helm-chart -version $(VERSION)

.PHONY: helm-chart
helm-chart: build-installer ## Regenerate the Helm chart charts/authstack-operator from the kustomize builds in dist/ (part of build-installer).

.PHONY: release
release: ## Pin a release: make release VERSION=x.y.z writes VERSION, dist/install*.yaml with both images at vx.y.z, and bin/ with the version baked in.
	@[[ "$(VERSION)" =~ ^[0-9]+\.[0-9]+\.[0-9]+$$ ]] || { echo "VERSION must be x.y.z, got '$(VERSION)'"; exit 1; }
	echo "$(VERSION)" > VERSION
	$(MAKE) build-installer build VERSION=$(VERSION)
	@test "$$($(LOCALBIN)/authserver version)" = "v$(VERSION)" || { echo "bin/authserver does not report v$(VERSION)"; exit 1; }
	@test "$$($(LOCALBIN)/manager --version)" = "v$(VERSION)" || { echo "bin/manager does not report v$(VERSION)"; exit 1; }
	@echo "release v$(VERSION): commit VERSION, config/manager, dist/ and charts/, tag v$(VERSION), then make docker-build"

##@ Deployment

.PHONY: install
install: manifests kustomize ## Install the CRD into the cluster in your kubeconfig.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: manifests kustomize ## Remove the CRD (and so every AuthStack) from the cluster.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: deploy
deploy: manifests kustomize ## Deploy the operator to the cluster in your kubeconfig.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: kustomize ## Remove the operator from the cluster.
	$(KUSTOMIZE) build config/default | $(KUBECTL) delete --ignore-not-found -f -

##@ Tools

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Build the pinned controller-gen into bin/.
$(CONTROLLER_GEN): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $(CONTROLLER_GEN)

.PHONY: kustomize
kustomize: $(KUSTOMIZE) ## Build the pinned kustomize into bin/.
$(KUSTOMIZE): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	mv $(LOCALBIN)/kustomize $(KUSTOMIZE)
