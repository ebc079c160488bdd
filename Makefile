# hull: make build | install | test | conformance | demo
GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
PREFIX  ?= /usr/local
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Static: no dynamic loader work on each of the two execs per container start
# (measured: `hull-runtime --version` 3.5 -> 3.1 ms). libseccomp.a comes with
# libseccomp-dev; netgo/osusergo keep glibc's NSS out.
STATIC  := -tags 'netgo osusergo' -ldflags "$(LDFLAGS) -linkmode external -extldflags -static"
SRC     := $(shell find . -name '*.go' -o -name '*.c' | grep -v '^./bin/') go.mod go.sum

.PHONY: build install test unit conformance demo lint clean

build: bin/hull-runtime bin/hull bin/hull-monitor bin/hull-cri bin/mkbundle

bin/hull-runtime: $(SRC)
	$(GO) build -trimpath $(STATIC) -o $@ ./cmd/hull-runtime

# The engine is not on every container's start path: a plain (dynamic,
# pure Go) build.
bin/hull: $(SRC)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $@ ./cmd/hull

# `hull serve`, the CRI server: a binary of its own, so gRPC and the
# Kubernetes packages stay out of every other hull command's start-up.
bin/hull-cri: $(SRC)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $@ ./cmd/hull-cri

# One per container, long-lived: pure Go, small, stripped.
bin/hull-monitor: $(SRC)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $@ ./cmd/hull-monitor

bin/mkbundle: $(SRC)
	$(GO) build -trimpath -o $@ ./cmd/mkbundle

install: build
	install -m 0755 bin/hull-runtime $(PREFIX)/bin/hull-runtime
	install -m 0755 bin/hull $(PREFIX)/bin/hull
	install -m 0755 bin/hull-monitor $(PREFIX)/bin/hull-monitor
	install -m 0755 bin/hull-cri $(PREFIX)/bin/hull-cri

# The whole suite: unit and integration tests (as root, real containers), lint,
# the leak check, and the OCI runtime-tools validation suite.
test: build lint
	scripts/test.sh

unit:
	$(GO) test ./...

conformance: build
	scripts/conformance.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null 2>&1; then staticcheck ./...; elif [ -x "$$($(GO) env GOPATH)/bin/staticcheck" ]; then "$$($(GO) env GOPATH)/bin/staticcheck" ./...; else echo "staticcheck not installed (scripts/deps.sh installs it)"; exit 1; fi

demo: build
	scripts/demo.sh

clean:
	rm -rf bin

# Times hull-runtime beside runc and crun in one run (as root, about a minute;
# builds bin/hull-runtime first). More runs and a JSON copy of the results:
#   make bench BENCH_ARGS='-runs 100 -par-runs 5 -json bench.json'
.PHONY: bench bench-pull
bench:
	$(GO) run ./bench $(BENCH_ARGS)
	bench/seccomp.sh

# Pulls a 1 GB, 12-layer image (built offline) from a local docker-registry
# with hull, podman, ctr and skopeo+umoci, cold and warm (as root, a few
# minutes; the layers are cached in /var/tmp/hull-bench-pull).
bench-pull: build
	$(GO) run ./bench/pull $(BENCH_PULL_ARGS)
