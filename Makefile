# elcache: build, run and test. `make help` lists the targets.

GO              ?= go
BIN             := bin
TOOLS           := $(BIN)/tools
# `make run`: a local 3-node cluster; node i listens on GRPC_PORT+i-1,
# GOSSIP_PORT+i-1 and (Redis protocol) RESP_PORT+i-1 and keeps its data
# and log in DATA_DIR/ni.
DATA_DIR        ?= data
# BACKEND is the nodes' backing database for make run: empty for an SQLite
# file in DATA_DIR, none for a pure cache, or a postgres:// URL.
BACKEND         ?=
GRPC_PORT       ?= 7400
GOSSIP_PORT     ?= 7946
RESP_PORT       ?= 6379
TEST_TIMEOUT    ?= 15m

# Pinned code generators. protoc comes from Debian (protobuf-compiler).
PROTOC_VERSION          := 3.21.12
PROTOC_GEN_GO_VERSION   := v1.36.12
PROTOC_GEN_GRPC_VERSION := v1.5.1
STATICCHECK_VERSION     := v0.8.0

PROTOS := $(sort $(wildcard proto/*/v1/*.proto))

.PHONY: help build run run-fg stop deps test test-short docker compose-smoke bench bench-reads bench-writes bench-client bench-compare bench-compare-deps fuzz proto proto-check lint tools clean \
	jepsen jepsen-quick jepsen-selftest jepsen-run jepsen-deps

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## Build bin/elcache and bin/elcachectl.
	$(GO) build -o $(BIN)/elcache ./cmd/elcache
	$(GO) build -o $(BIN)/elcachectl ./cmd/elcachectl

# `make docker`: the image elcache:$(IMAGE_TAG) (and :latest) from
# deploy/docker/Dockerfile: static binaries (no cgo) in a build context of
# their own, FROM scratch, so nothing is pulled.
IMAGE_TAG       ?= dev
DOCKER_CTX      := $(BIN)/docker

docker: ## Build the elcache:latest image (FROM scratch, static binaries; no registry needed).
	rm -rf $(DOCKER_CTX) && mkdir -p $(DOCKER_CTX)/data
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(DOCKER_CTX)/elcache ./cmd/elcache
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(DOCKER_CTX)/elcachectl ./cmd/elcachectl
	cp deploy/docker/Dockerfile $(DOCKER_CTX)/
	docker build -q -t elcache:$(IMAGE_TAG) -t elcache:latest $(DOCKER_CTX)

compose-smoke: docker ## Start the 3-node compose cluster, write and read, kill a node, read again, tear it down.
	deploy/compose/smoke.sh

RUN_ENV = DATA_DIR="$(DATA_DIR)" GRPC_PORT="$(GRPC_PORT)" GOSSIP_PORT="$(GOSSIP_PORT)" RESP_PORT="$(RESP_PORT)" BIN="$(BIN)" BACKEND="$(BACKEND)"

run: build ## Run a local 3-node cluster in the foreground (gRPC 7400-7402, Redis 6379-6381, data and logs in ./data/n1..n3); Ctrl-C stops it.
	@$(RUN_ENV) exec deploy/local/run.sh run

run-fg: run # Former name of run, which now stays in the foreground.

stop: ## Stop the nodes of a `make run` whose shell was killed.
	@$(RUN_ENV) deploy/local/run.sh stop

# PostgreSQL for the tests (storage/sqlstore/pgtest runs a throwaway server
# from its binaries). Debian keeps initdb out of PATH, under
# /usr/lib/postgresql/VERSION/bin. Redis for the client's benchmark against
# Redis (client/internal/redistest runs a throwaway redis-server), and
# redis-tools for redis-benchmark, which the Redis listener's system test
# (cmd/elcache/resp_system_test.go) and bench-compare drive.
deps: ## Install what the tests need beyond Go modules (PostgreSQL, Redis, redis-benchmark), if missing.
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "installing PostgreSQL (initdb not found)"; \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
	@command -v redis-server >/dev/null || { \
		echo "installing Redis (redis-server not found)"; \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
	@command -v redis-benchmark >/dev/null || { \
		echo "installing redis-tools (redis-benchmark not found)"; \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools >/dev/null; }

test: deps ## Run every test with the race detector.
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

test-short: deps ## Run the tests without the race detector.
	$(GO) test -count=1 ./...

# The fault suite (jepsen/): real elcache processes in network namespaces
# in front of a throwaway PostgreSQL, faults injected by a seeded
# schedule, the history checked. It needs root. Each run writes a folder
# under JEPSEN_OUT (index.html, results.json, history.jsonl, nemesis.log,
# node logs); SEED=N reruns a schedule (0 picks one); NEAR_CACHE=1 makes
# the set, session and bounded workloads of any profile read through near
# caches (quick-near always does).
JEPSEN_OUT      ?= jepsen-results
SEED            ?= 0
PROFILE         ?= quick
DURATION        ?= 0
NEAR_CACHE      ?= 0
JEPSEN_TEST      = cd jepsen && $(GO) test -tags jepsen -count=1 -v -timeout 60m

jepsen-deps: deps ## Install what the fault suite needs (iproute2, iptables, e2fsprogs, util-linux), if missing.
	@for tool in ip:iproute2 iptables:iptables mkfs.ext4:e2fsprogs fsfreeze:util-linux; do \
		command -v $${tool%%:*} >/dev/null || { \
			echo "installing $${tool#*:} ($${tool%%:*} not found)"; \
			sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
			$$sudo apt-get update -qq && \
			$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $${tool#*:} >/dev/null; }; \
	done

jepsen: jepsen-deps ## Fault suite: the full run (8 min of every fault, ~10 min in all), then the self-tests and regressions (~9.5 min).
	$(JEPSEN_TEST) -run '^TestJepsen$$' . -args -profile full -seed $(SEED) -duration $(DURATION) -near-cache=$(NEAR_CACHE) -out $(abspath $(JEPSEN_OUT))
	$(JEPSEN_TEST) -run '^(TestSelfTest|TestRegressions)$$' . -args -seed $(SEED) -out $(abspath $(JEPSEN_OUT))

jepsen-quick: jepsen-deps ## Fault suite, short: every fault once or so in 2 minutes, then 75 s with near-cache clients (~5 min in all); CI runs it.
	$(JEPSEN_TEST) -run '^TestJepsen$$' . -args -profile quick,quick-near -seed $(SEED) -duration $(DURATION) -near-cache=$(NEAR_CACHE) -out $(abspath $(JEPSEN_OUT))

jepsen-selftest: jepsen-deps ## Fault suite self-tests (a promise broken on purpose must be caught) and regression scenarios (must pass).
	$(JEPSEN_TEST) -run '^(TestSelfTest|TestRegressions)$$' . -args -seed $(SEED) -out $(abspath $(JEPSEN_OUT))

jepsen-run: jepsen-deps ## One fault-suite run: PROFILE=quick|quick-near|full|break-lease|break-flush|break-fence|break-replicated|break-changes SEED=N DURATION=2m NEAR_CACHE=1.
	$(JEPSEN_TEST) -run '^TestJepsen$$' . -args -profile $(PROFILE) -seed $(SEED) -duration $(DURATION) -near-cache=$(NEAR_CACHE) -out $(abspath $(JEPSEN_OUT))

bench: ## Run the benchmarks (storage, single-node gRPC, read levels on 3 nodes).
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./storage ./storage/sqlstore ./node

bench-reads: ## Benchmark the five read levels on a 3-node cluster (1 and 50 clients).
	$(GO) test -run '^$$' -bench ReadLevels -benchtime 5000x ./node

bench-writes: deps ## Benchmark the write modes against PostgreSQL (local and 1ms away; unary and pipelined) and the refill herd.
	$(GO) test -run '^$$' -bench WriteModes -benchtime 20000x ./node
	$(GO) test -run '^$$' -bench RefillHerd -benchtime 20x ./node

bench-client: deps ## Benchmark the Go client (GET/SET, 1/8/50 callers, unary and pipelined, 3 nodes) against Redis driven by go-redis.
	$(GO) test -run '^$$' -bench 'Client|Redis' -benchtime 20000x ./client

# The comparison of issue 8 (cmd/elcache-bench/compare_test.go): a 3-node
# elcache cluster in front of a throwaway PostgreSQL, Redis twice (in
# memory; AOF with appendfsync always) and a 3-member etcd cluster, all on
# loopback, then a fixed matrix of YCSB-style runs (50 clients, 10,000
# zipfian keys, 100-byte values, 12s each after 3s of warm-up, and 20 thundering herds; about 6 min on 2 cores).
# The matrix has GETs from the Go client's near cache against Redis's GET,
# and YCSB A at BOUNDED(100ms) without and with it, every read checked
# (issue 21); BENCH_ARGS="-only 'elcache-near|^mix-|^get-redis' -herds 0
# -failovers 0 -memory-keys 0 -redis-benchmark-requests 0" runs just those.
# Before it, on clusters of their own (issue 18), 3 SIGKILLs of a leader
# under 50 writers (-failovers 0 skips them) and memory per key with
# 1,000,000 keys against Redis (-memory-keys 0 skips it): about 75 s more.
# Between the herds and the matrix, redis-benchmark GET and SET at -P 1
# and -P 16 against node 1's Redis port and the in-memory Redis
# (-redis-benchmark-requests 0 skips it): under a minute more.
# It writes results.json, report.html and results.md to BENCH_OUT.
# BENCH_ARGS passes more flags, e.g. BENCH_ARGS='-duration 3s -only get-',
# or BENCH_ARGS='-only none -herds 0' for just the failover and memory.
BENCH_OUT       ?= bench-results
BENCH_ARGS      ?=

bench-compare-deps: deps ## Install what bench-compare needs beyond deps (etcd), if missing.
	@command -v etcd >/dev/null || { \
		echo "installing etcd (etcd not found)"; \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null; }

bench-compare: bench-compare-deps ## Compare elcache's read levels and write modes with Redis and etcd (about 8 min); report in bench-results/.
	$(GO) test -tags benchcompare -count=1 -v -run '^TestCompare$$' -timeout 30m ./cmd/elcache-bench -args -out $(abspath $(BENCH_OUT)) $(BENCH_ARGS)

fuzz: ## Fuzz request validation, stored-entry decoding and the RESP reader for 30s each.
	$(GO) test -run '^$$' -fuzz FuzzValidate -fuzztime 30s ./node
	$(GO) test -run '^$$' -fuzz FuzzDecodeEntry -fuzztime 30s ./storage
	$(GO) test -run '^$$' -fuzz FuzzDecodeLog -fuzztime 30s ./storage
	$(GO) test -run '^$$' -fuzz FuzzReader -fuzztime 30s ./internal/resp

tools: $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc ## Install the pinned code generators into bin/tools.

$(TOOLS)/protoc-gen-go:
	GOBIN=$(abspath $(TOOLS)) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(abspath $(TOOLS)) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GRPC_VERSION)

protoc-check:
	@command -v protoc >/dev/null || { \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq protobuf-compiler >/dev/null; }
	@protoc --version | grep -q "libprotoc $(PROTOC_VERSION)" || \
		{ echo "protoc $(PROTOC_VERSION) is required, found: $$(protoc --version)"; exit 1; }

proto: tools protoc-check ## Regenerate the Go code from the .proto files.
	PATH=$(abspath $(TOOLS)):$$PATH protoc -I proto \
		--go_out=paths=source_relative:proto \
		--go-grpc_out=paths=source_relative:proto $(PROTOS)

proto-check: tools protoc-check ## Fail if the committed generated code differs from a fresh generation.
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	PATH=$(abspath $(TOOLS)):$$PATH protoc -I proto \
		--go_out=paths=source_relative:$$tmp \
		--go-grpc_out=paths=source_relative:$$tmp $(PROTOS) && \
	for f in $$(cd $$tmp && find . -name '*.go'); do \
		diff -u proto/$$f $$tmp/$$f || { echo "proto/$$f is stale: run make proto"; exit 1; }; \
	done && echo "generated code is up to date"

lint: ## gofmt, go vet and staticcheck.
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags jepsen ./jepsen
	$(GO) vet -tags elcache_break ./cmd/elcache
	$(GO) vet -tags benchcompare ./cmd/elcache-bench
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

clean: ## Remove build output.
	rm -rf $(BIN)
