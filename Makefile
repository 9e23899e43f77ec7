# ravel — build, test, demo. `make test` installs what it needs on a fresh Debian machine
# (apt packages, the Debian kernel for the QEMU guest, kube-apiserver and etcd built from the
# Go module proxy) and caches them under ~/.cache/ravel, outside the clone.
SHELL := /bin/bash
GO ?= go
export PATH := /usr/local/go/bin:$(PATH)
BIN := bin
RAVEL := $(BIN)/ravel
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
# Debian packages the tests and the demo use.
DEB_PACKAGES := qemu-system-x86 ipvsadm busybox-static cpio kmod iptables nftables iproute2 curl systemd libcap2-bin procps util-linux python3-minimal bird2 rpm debootstrap

.PHONY: all build test unit e2e demo lint check bench bench-scale deps kapi clean fuzz fuzz-long install uninstall soak package package-test

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.version=$(VERSION) -X main.revision=$(REVISION)" -o $(RAVEL) ./cmd/ravel

# install puts the binary under $(PREFIX), the systemd unit (its binary path rewritten for
# $(PREFIX)) and, only when there is none, a starting config; an operator's config is never
# overwritten. DESTDIR prefixes every path, for packaging.
PREFIX ?= /usr/local
DESTDIR ?=
UNIT_DIR := /etc/systemd/system
CONF := /etc/ravel/ravel.yaml

install: build
	install -D -m 0755 $(RAVEL) $(DESTDIR)$(PREFIX)/bin/ravel
	install -d -m 0755 $(DESTDIR)$(UNIT_DIR)
	sed 's#/usr/local/bin/ravel#$(PREFIX)/bin/ravel#g' systemd/ravel.service > $(DESTDIR)$(UNIT_DIR)/ravel.service.tmp
	chmod 0644 $(DESTDIR)$(UNIT_DIR)/ravel.service.tmp
	mv $(DESTDIR)$(UNIT_DIR)/ravel.service.tmp $(DESTDIR)$(UNIT_DIR)/ravel.service
	@if [ -e $(DESTDIR)$(CONF) ]; then \
	  echo "kept the existing $(DESTDIR)$(CONF) (not overwritten)"; \
	else \
	  install -d -m 0755 $(DESTDIR)$(dir $(CONF)) && \
	  sed -e '/yaml-language-server/d' -e 's#examples/static.yaml#$(CONF)#g' examples/static.yaml \
	    > $(DESTDIR)$(CONF).tmp && chmod 0644 $(DESTDIR)$(CONF).tmp && \
	  mv $(DESTDIR)$(CONF).tmp $(DESTDIR)$(CONF) && \
	  echo "installed $(DESTDIR)$(CONF) from examples/static.yaml: edit it, then ravel config validate $(CONF)"; \
	fi
	@echo "then: systemctl daemon-reload && systemctl enable --now ravel"

# uninstall removes the binary and the unit; the config under /etc/ravel stays.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/ravel $(DESTDIR)$(UNIT_DIR)/ravel.service
	@echo "kept $(DESTDIR)$(CONF); remove it by hand if it is no longer wanted"

# deps installs the Debian packages that are missing (quietly, once).
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

include hack/kapi/kapi.mk

# test is what CI runs: unit and host-kernel tests (iptables in namespaces), integration tests
# against a real kube-apiserver, all under the race detector, and the real-kernel e2e scenarios
# in the QEMU guest. Each stage's time is printed at the end (hack/stages.sh).
test:
	@bash hack/stages.sh deps kapi build unit package-test e2e

# unit runs every package's tests with -race: a data race fails the run (the race detector
# makes the test binary exit non-zero). RAVEL_REQUIRE_KAPI=1: a test that needs kube-apiserver
# (or promtool, for deploy/'s alert rules, or nft, for the nftables backend's kernel tests)
# fails rather than skips when it is missing.
unit:
	RAVEL_REQUIRE_KAPI=1 KAPI_BIN=$$(hack/kapi/build.sh | tail -n1) PROMTOOL=$$(hack/promtool/build.sh | tail -n1) \
	  $(GO) test -race -count=1 ./...

# check is the quick loop (under 2 minutes on a warm cache): gofmt, vet, staticcheck and the
# tests with -race -short. It never builds kube-apiserver: tests that need it skip under -short
# (and only there; make test runs them all).
check: lint
	$(GO) test -race -short -count=1 ./...

# package builds dist/ravel_$(PKG_VERSION)_amd64.deb and dist/ravel-$(PKG_VERSION)-1.x86_64.rpm
# with nfpm (packaging/nfpm.yaml): the binary, the systemd unit (for /usr/bin), the starting
# config as a config file the package manager never overwrites, sysctl.d and modules-load.d
# snippets, bash/zsh/fish completions and man pages generated from the CLI's own help.
# PKG_VERSION defaults to 0.0.N, N the number of commits: it grows with every commit on main.
PKG_VERSION ?= 0.0.$(shell git rev-list --count HEAD 2>/dev/null || echo 0)
NFPM := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
package: build
	rm -rf dist && mkdir -p dist/completions dist/man
	sed 's#/usr/local/bin/ravel#/usr/bin/ravel#g' systemd/ravel.service > dist/ravel.service
	sed -e '/yaml-language-server/d' -e 's#examples/static.yaml#/etc/ravel/ravel.yaml#g' examples/static.yaml > dist/ravel.yaml
	$(RAVEL) completion bash > dist/completions/ravel.bash
	$(RAVEL) completion zsh > dist/completions/_ravel
	$(RAVEL) completion fish > dist/completions/ravel.fish
	$(RAVEL) man dist/man && gzip -9n dist/man/*.1
	for p in deb rpm; do RAVEL_PKG_VERSION=$(PKG_VERSION) GOFLAGS= $(GO) run $(NFPM) package -f packaging/nfpm.yaml -p $$p -t dist/ || exit 1; done

# package-test builds two packages and checks them as a user's machine would see them
# (packaging/test.sh): contents, conffiles, an install and an upgrade with dpkg into a
# throwaway root that keep an edited config, and the rpm's contents read by rpm itself.
package-test: deps build
	bash packaging/test.sh

# One guest boot runs every scenario; run.sh sizes its time limit by the number of scenarios.
e2e: deps build
	RAVEL_BIN=$(abspath $(RAVEL)) bash test/e2e/run.sh

demo: deps build
	RAVEL_BIN=$(abspath $(RAVEL)) bash test/e2e/demo.sh

lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./config ./reconcile

# bench-scale: ravel against ipvsadm -R in the QEMU guest at 10,000 services × 20 destinations
# (bench/scale.sh; about 7 minutes with RUNS=2). SCALE="10 100 20" for 1,000 services.
SCALE ?= 100 100 20
RUNS ?= 2
bench-scale:
	bash bench/scale.sh $(SCALE) $(RUNS) 100

# fuzz runs every fuzz target of every package (hack/fuzz.sh finds them afresh on each run)
# for FUZZTIME each; fuzz-long for 10 minutes each. A failing input is written to its
# package's testdata/fuzz/FuzzXxx/: commit it there with the fix, so that go test keeps
# running it as a regression test.
FUZZTIME ?= 30s
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) hack/fuzz.sh

fuzz-long: FUZZTIME = 10m
fuzz-long: fuzz

# soak is not part of test (nor CI): $(SOAK) of EndpointSlice churn on a real kube-apiserver,
# the director on the netops fakes, failing on growth of goroutines, heap or open fds.
# RAVEL_SOAK_RATE (changes/s, default 10) and RAVEL_SOAK_SAMPLE (default 1m) pass through.
SOAK ?= 20m
SOAK_TIMEOUT ?= 3h
soak:
	RAVEL_SOAK=$(SOAK) RAVEL_REQUIRE_KAPI=1 KAPI_BIN=$$(hack/kapi/build.sh | tail -n1) $(GO) test ./test/soak -run TestSoak -v -count=1 -timeout $(SOAK_TIMEOUT)

clean:
	rm -rf $(BIN)
