# traefik-influxdb-bridge. `make help` lists the targets.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       ?= bin/traefik-influxdb-bridge
# Extra flags for every go test, e.g. GOTESTFLAGS=-v (what .ci/run uses).
GOTESTFLAGS ?=
# The end-to-end and deployment suites build Traefik and start real servers.
E2E_TIMEOUT    ?= 60m
DEPLOY_TIMEOUT ?= 30m
# Arguments of examples/demo/run.sh, e.g. DEMO_ARGS=-keep.
DEMO_ARGS ?=

.PHONY: help build test test-unit test-fuzz test-e2e test-deploy test-bench demo vet fmt-check clean

help:
	@echo "make build        build $(BIN) (version $(VERSION))"
	@echo "make test         unit + end-to-end + deployment tests (what CI runs)"
	@echo "make test-unit    go test ./... in the main module"
	@echo "make test-fuzz    a short coverage-guided run of every fuzz target (a set count each, or FUZZTIME)"
	@echo "make test-e2e     the e2e/ module (real Traefik, real influxd)"
	@echo "make test-deploy  the deploytest/ module"
	@echo "make test-bench   the bench/ module's tests and a quick run of the comparison harness (not the measurement)"
	@echo "make demo         run Traefik, InfluxDB and the bridge on this machine (examples/demo/run.sh)"
	@echo "make vet          gofmt check and go vet"

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/traefik-influxdb-bridge

test: test-unit test-fuzz test-e2e test-deploy test-bench

test-unit:
	$(GO) test $(GOTESTFLAGS) ./...

# Each fuzz target runs for a number of executions (about 10 s on a loaded
# 2-core machine), not a duration: with a duration, go1.26's fuzz coordinator
# can report its own deadline as a failure ("context deadline exceeded", no
# input written; golang/go#75804, fixed in Go 1.27). FUZZTIME=30s overrides
# every target. Minimising a new input is capped, or one find can keep both
# workers busy for the default minute.
FUZZTIME ?=
FUZZ_TARGETS := ./collector:FuzzParse:10000x ./collector:FuzzParseProto:20000x ./collector:FuzzConvert:9000x ./collector:FuzzUnmarshalState:5000x \
	./sink/diskqueue:FuzzDecodeRecord:100000x ./sink/diskqueue:FuzzOpen:300x

test-fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; n="$(FUZZTIME)"; [ -n "$$n" ] || n=$${rest#*:}; \
		echo "go test -run '^$$' -fuzz '^$$fn$$' -fuzztime $$n $$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $$n -fuzzminimizetime 2s -parallel 2 $$pkg; \
	done

test-e2e:
	@if [ -f e2e/go.mod ]; then \
		echo "cd e2e && $(GO) test -timeout $(E2E_TIMEOUT) $(GOTESTFLAGS) ./..."; \
		cd e2e && $(GO) test -timeout $(E2E_TIMEOUT) $(GOTESTFLAGS) ./...; \
	else \
		echo "test-e2e: no e2e/go.mod in this checkout, no end-to-end suite to run"; \
	fi

test-deploy:
	@if [ -f deploytest/go.mod ]; then \
		echo "cd deploytest && $(GO) test -timeout $(DEPLOY_TIMEOUT) $(GOTESTFLAGS) ./..."; \
		cd deploytest && $(GO) test -timeout $(DEPLOY_TIMEOUT) $(GOTESTFLAGS) ./...; \
	else \
		echo "test-deploy: no deploytest/go.mod in this checkout, no deployment suite to run"; \
	fi

# The harness's own tests and bench/smoke.sh (a tiny page, the bridge in both
# schemas, and Telegraf if bench/tools/telegraf/build.sh has built it), so
# that the harness behind BENCHMARKS.md keeps working. The measurement itself
# is bench/run.sh, on a quiet machine.
test-bench:
	@if [ -f bench/go.mod ]; then \
		echo "cd bench && $(GO) test $(GOTESTFLAGS) ./... && bash smoke.sh"; \
		cd bench && $(GO) test $(GOTESTFLAGS) ./... && bash smoke.sh; \
	else \
		echo "test-bench: no bench/go.mod in this checkout"; \
	fi

demo:
	bash examples/demo/run.sh $(DEMO_ARGS)

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt'ed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
