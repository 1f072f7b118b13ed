# bgplb: see README.md. `make test` runs everything CI runs.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
PKG      ?= ./...
BENCH    ?= .
FUZZTIME ?= 30s
# Two cores on CI: at most two packages build and test at once.
GOTESTFLAGS ?= -p 2 -count=1 -timeout 30m

.PHONY: all build build-router install-router image chart test deps k8sbin lint bench bench-compare soak fuzz lab clean generate

all: build

build: build-router
	@echo "building bin/bgplb (about 4 minutes with a cold Go build cache, seconds after)"
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o bin/bgplb ./cmd/bgplb

# The router box's build: the same command with the router's roles only
# (router, neighbor, rib, fib, version), without the Kubernetes client,
# whose package initialisation alone costs about 19 MB of resident memory.
build-router:
	$(GO) build -trimpath -tags routeronly -ldflags "-X main.version=$(VERSION)" -o bin/bgplb-router ./cmd/bgplb

# Installs the router build as $(PREFIX)/bin/bgplb, its systemd unit, and
# deploy/router/router.yaml as /etc/bgplb/router.yaml (0640) unless one
# exists; on the real system (no DESTDIR) it also creates the unit's user
# and group bgplb and gives the config to that group. DESTDIR stages it
# elsewhere (packaging).
PREFIX ?= /usr/local
install-router: build-router
	install -D -m 0755 bin/bgplb-router $(DESTDIR)$(PREFIX)/bin/bgplb
	install -D -m 0644 deploy/router/bgplb-router.service $(DESTDIR)/etc/systemd/system/bgplb-router.service
	sed -i 's|/usr/local/bin/bgplb|$(PREFIX)/bin/bgplb|' $(DESTDIR)/etc/systemd/system/bgplb-router.service
	@if [ -e $(DESTDIR)/etc/bgplb/router.yaml ]; then echo "keeping $(DESTDIR)/etc/bgplb/router.yaml"; \
	else install -D -m 0640 deploy/router/router.yaml $(DESTDIR)/etc/bgplb/router.yaml; fi
	@# The unit's user, on the real system only (not when staging).
	@if [ -z "$(DESTDIR)" ]; then \
		getent group bgplb >/dev/null || groupadd --system bgplb; \
		getent passwd bgplb >/dev/null || useradd --system --gid bgplb --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin bgplb; \
		chgrp bgplb /etc/bgplb/router.yaml; \
	fi

# bgplb's container image, built in Go without a container engine
# (hack/image, internal/image): linux/amd64 and linux/arm64 in one OCI index.
# Writes bin/image/oci (OCI layout), bin/image/bgplb-oci.tar (oci-archive:
# podman load, ctr images import) and bin/image/bgplb-<host arch>.tar (docker
# load, podman load). Reproducible: same source, same digest (timestamps from
# SOURCE_DATE_EPOCH, else the commit time). The image runs as 65532:65532;
# the speaker's manifest sets root with only the capabilities it needs.
IMAGE_ARCHS ?= amd64,arm64
image:
	$(GO) run ./hack/image -version $(VERSION) -archs $(IMAGE_ARCHS) -out bin/image

# The Helm chart deploy/helm/bgplb packaged with Helm's Go module (no helm
# binary): bin/bgplb-chart-$(VERSION).tgz, deploying the image `make image` tags.
chart:
	$(GO) run ./hack/chart -version $(VERSION) -out bin

# Packages come from hack/install-deps.sh, run here only in CI or with DEPS=1
# (or run `make deps` yourself). Fuzz seed corpora in testdata/fuzz run as
# ordinary tests.
test: $(if $(or $(CI),$(DEPS)),deps) lint k8sbin
	$(GO) test $(GOTESTFLAGS) ./...
	$(GO) test -race -short $(GOTESTFLAGS) $(RACE_PKGS)

# The packages that run goroutines, again under the race detector. -short
# trims the longest randomized tests: 90 s for all nine packages on 2 cores
# with a warm build cache (without -short, 170 s of tests alone). The first
# run after a change of dependencies also builds them race-instrumented
# (client-go and controller-runtime for speaker and controller: minutes).
RACE_PKGS ?= ./bgp/session/... ./bgp/rib/... ./fib/... ./router/... ./speaker/... ./controller/...

deps:
	hack/install-deps.sh

# etcd, kube-apiserver, kubectl, kube-controller-manager, kube-scheduler, kubelet and kube-proxy for
# internal/controlplane (bgplb lab) and internal/kubetest (tests), built from hack/k8sbin when missing or
# stale (~20 min the first time on a machine, about a minute with a warm Go cache, then skipped).
k8sbin:
	hack/k8sbin.sh

lint:
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt needed on:"; echo "$$unformatted"; exit 1; \
	fi
	$(GO) vet ./...

# Regenerates api/v1alpha1/zz_generated.deepcopy.go and the CRDs in
# config/crd/bases from the markers in api/, and the controller's RBAC in
# config/rbac/{controller,speaker} from the markers in those packages. controller-gen runs with
# `go run pkg@version` so that it stays out of go.mod; the api package's
# tests fail when the committed files differ from its output.
CONTROLLER_GEN_VERSION := v0.23.0
CONTROLLER_GEN ?= $(GO) run sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)

generate:
	$(CONTROLLER_GEN) object crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=bgplb-controller paths=./controller/... output:rbac:artifacts:config=config/rbac/controller
	$(CONTROLLER_GEN) rbac:roleName=bgplb-speaker paths=./speaker/... output:rbac:artifacts:config=config/rbac/speaker

# make bench PKG=./bgp/wire BENCH=Decode
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count 1 $(PKG)

# The real-cluster lab's rolling updates, restarts and node failures with a
# client asking the Pi-hole throughout: queries lost and the longest outage
# per operation (lab/home BenchmarkRollouts), and the time until the routers
# drop a failed or drained node, per BFD setting (BenchmarkNodeOut); in L2 mode
# the time from cutting the owner to the client's first answer, the queries lost
# and the gratuitous ARPs seen, per lease timing (BenchmarkL2Failover); root, about two
# minutes per lab plus 20-30 s per op.
LAB_BENCHTIME ?= 3x
LAB_BENCH ?= Rollouts|NodeOut|L2Failover
bench-lab:
	$(GO) test -run '^$$' -bench '$(LAB_BENCH)' -benchtime $(LAB_BENCHTIME) -count 1 -timeout 40m ./lab/home

# bgplb router, BIRD, FRR and gobgpd side by side (bench/compare_test.go),
# then the many-peers load and the router's restart; tens of minutes, root.
# (No package argument: go test streams the progress lines as they come.)
# COMPARE_BENCH narrows it: make bench-compare COMPARE_BENCH=Compare/100k
# Environment: BGPLB_COMPARE_RUNS (3), BGPLB_COMPARE_SIZES (100000,1000000),
# BGPLB_COMPARE (bird,frr,gobgpd: which to run beside bgplb), BGPLB_PEERS
# (5000), BGPLB_PEERS_BIRD (500), BGPLB_PEER_ROUTES (4).
COMPARE_BENCH ?= Compare|ManyPeers|RouterRestart
bench-compare: build-router
	cd bench && BGPLB_BIN=$(CURDIR)/bin/bgplb-router $(GO) test -run '^$$' -bench '$(COMPARE_BENCH)' -benchtime 1x -count 1 -timeout 3h

# 50 peers flapping and churning against the router in namespaces for
# SOAK_DURATION (bench/soak_test.go): RSS and goroutines must stay flat, the
# log hold no unexpected WARN/ERROR, the kernel end equal to the RIB. Root;
# not part of `make test`.
SOAK_DURATION ?= 10m
soak: build-router
	cd bench && SOAK_DURATION=$(SOAK_DURATION) BGPLB_BIN=$(CURDIR)/bin/bgplb-router $(GO) test -run '^TestSoak$$' -count 1 -v -timeout 0

# Runs every Fuzz target in PKG for FUZZTIME each, and fails if there is none:
# make fuzz FUZZTIME=1m
fuzz:
	@set -euo pipefail; \
	pkgs="$$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' $(PKG))"; \
	found=0; \
	for p in $$pkgs; do \
		list="$$($(GO) test -list '^Fuzz' "$$p")"; \
		for f in $$(grep '^Fuzz' <<<"$$list" || true); do \
			found=1; \
			echo "== $$p $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) "$$p"; \
		done; \
	done; \
	if [ "$$found" = 0 ]; then echo "no fuzz targets in $(PKG)"; exit 1; fi

# The seed's home lab on this machine (root): installs the Debian packages its
# nodes run (containerd, runc, CNI plugins, iptables) and builds bin/bgplb and
# the pinned Kubernetes binaries when missing, then `bgplb lab up` (a real
# cluster; its images are built from this tree). LAB_FLAGS=--routers=2 adds
# the backup router, LAB_FLAGS=--cluster=false plays the Kubernetes half;
# `bin/bgplb lab down` removes it all.
LAB_FLAGS ?=
# The lab's own preflight (`bgplb lab preflight`) comes after the build; the
# shell check first says what is missing before fifteen minutes of building.
lab:
	@[ "$$(id -u)" = 0 ] || { echo "make lab: the lab needs root (network namespaces): run sudo make lab"; exit 1; }
	@command -v ip >/dev/null || { echo "make lab: the lab needs iproute2 (ip): apt-get install iproute2"; exit 1; }
	@hack/install-deps.sh lab
	@$(MAKE) --no-print-directory build
	@bin/bgplb lab preflight
	@$(MAKE) --no-print-directory k8sbin
	bin/bgplb lab up $(LAB_FLAGS)

clean:
	rm -rf bin
	rm -f *.test *.out *.prof cpu.pprof mem.pprof
