# shardproxy — see README.md. The two commands a user needs: `make demo`, `make test`.

GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
LDFLAGS     := -X main.version=$(VERSION)
FUZZTIME    ?= 60s
# Debian installs nutcracker in /usr/sbin, not on every user's PATH.
export PATH := $(PATH):/usr/sbin:/sbin

.PHONY: bench-evloop bench-stats all build test lint vet staticcheck fmt-check demo fuzz vectors bench deps-test deps-demo deps-bench deps-vectors fresh-check clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/shardproxy ./cmd/shardproxy

# Installs missing servers (as root) and runs every check CI runs.
test: deps-test lint
	$(GO) test -race -count=1 -timeout 30m ./...

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags placementgen ./internal/hashkit/

# staticcheck is a tool of the module (go.mod's tool line): its version is
# pinned there and `go tool` builds it; nothing is installed.
staticcheck:
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags placementgen ./internal/hashkit/

deps-test:
	@scripts/install-deps.sh test

deps-demo:
	@scripts/install-deps.sh demo

deps-bench:
	@scripts/install-deps.sh bench

deps-vectors:
	@scripts/install-deps.sh vectors

# The clean-room check: the README's two commands (make demo, make test) in
# a throw-away Debian root made with debootstrap, with none of the programs
# of scripts/programs.txt, no GOPATH and no Go build cache; only the Go
# toolchain is bind-mounted from this machine. Needs root; ~15 minutes.
fresh-check:
	@scripts/install-deps.sh fresh
	@scripts/fresh-check.sh

# Starts 3 redis-server and 2 memcached on loopback, then shardproxy in the
# foreground with conf/demo.yml; Ctrl-C stops everything it started.
demo: deps-demo build
	@scripts/demo.sh

# Side-by-side benchmark: direct redis-server, nutcracker and shardproxy in
# alternating rounds (bench/README.md explains the method). Takes ~6 minutes.
bench: deps-bench build
	$(GO) run ./bench -shardproxy bin/shardproxy | tee bench/latest.md

# What the stats cost: latency measurement on vs off, one process at a time,
# pinned (proxy on CPU 0, servers and load on CPU 1), 40 paired rounds, then
# an A/A run for the noise floor (~10 minutes).
bench-stats: deps-bench build
	{ PIN=1 bench/statscost.sh bin/shardproxy 40; echo; PIN=1 bench/statscost.sh bin/shardproxy 10 aa; } | tee bench/stats-cost.md

# Issue 16: the event-loop prototype (bench/evloop) against nutcracker and
# shardproxy, unpinned and pinned to one core, idle-connection memory at
# 5,000 and 50,000 clients, syscall counts and profiles (bench/README.md,
# "Event-loop prototype (issue 16)"). Needs root for 50,000 descriptors.
# Takes ~7 minutes; run it on a quiet machine.
bench-evloop: deps-bench build
	$(GO) build -o bin/evloop ./bench/evloop
	$(GO) run ./bench -evloop -shardproxy bin/shardproxy -evloop-bin bin/evloop -evloop-profiles bench/evloop-profiles | tee bench/evloop.md

# Long fuzzing: every fuzz target for FUZZTIME each (make fuzz FUZZTIME=10m).
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

# Regenerates internal/hashkit/testdata/nutcracker/ from the real nutcracker
# over real redis-server and memcached (~15 s).
vectors: deps-vectors
	$(GO) test -tags placementgen -run TestGeneratePlacementVectors -count=1 ./internal/hashkit/

clean:
	rm -rf bin
