# Gemini Balance (Go). `make run` starts the all-in-one on :8000; `make test`
# runs every module's tests (unit, component and the multi-process e2e).

GO       ?= go
BIN      ?= bin
SERVICES := edge keyd logd admind schedulerd
# Every workspace module, as package patterns from the repo root (go.work).
MODULES  := ./shared/... ./edge/... ./keyd/... ./logd/... ./admind/... ./schedulerd/... \
            ./testkit/... ./deployments/embedded/... ./deployments/allinone/... ./deployments/e2e/... \
            ./deployments/bench/...
TEST_TIMEOUT ?= 30m
TESTFLAGS    ?=
BENCHFLAGS   ?= -benchtime=1x

.PHONY: all build run test test-ha bench pgo vet modules modules-tidy clean ui-vendor

all: build

## build: bin/ gets the all-in-one, the five services and the test helpers.
build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/gemini-balance ./deployments/allinone
	@for s in $(SERVICES); do echo "$(GO) build -o $(BIN)/$$s ./$$s"; $(GO) build -o $(BIN)/$$s ./$$s || exit 1; done
	$(GO) build -o $(BIN)/gb-store ./deployments/embedded/cmd/gb-store
	$(GO) build -o $(BIN)/fakegemini ./testkit/cmd/fakegemini
	@# nats-server at the pinned version, from the module cache (a workspace module requires it).
	$(GO) build -o $(BIN)/nats-server github.com/nats-io/nats-server/v2

## run: build and start the all-in-one (data under DATA_DIR, default ./data).
run:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/gemini-balance ./deployments/allinone
	./$(BIN)/gemini-balance

## test: every module's tests, e2e included.
test:
	$(GO) test -timeout $(TEST_TIMEOUT) $(TESTFLAGS) $(MODULES)
	@# Outside go.work: compose-go, BuildKit and kustomize must not move the services' dependencies.
	cd deployments/manifests && GOWORK=off $(GO) test -timeout $(TEST_TIMEOUT) $(TESTFLAGS) ./...

## test-ha: only the deployment-resilience and moving-in tests (also part of
## `make test`): the 3-node NATS cluster under faults, which prints a table
## per fault, the gemini-balance .env, and the import from SQLite and MariaDB.
test-ha:
	$(GO) test -timeout $(TEST_TIMEOUT) -v -run 'TestNATSClusterSurvivesNodeFaults|TestGeminiBalanceDotEnvWorksUnchanged' ./deployments/e2e/
	$(GO) test -timeout $(TEST_TIMEOUT) -v -run 'TestImportFrom' ./deployments/allinone/importer/

## bench: benchmarks only (one iteration each by default; BENCHFLAGS= for real figures).
bench:
	$(GO) test -run '^$$' -bench . $(BENCHFLAGS) -timeout $(TEST_TIMEOUT) $(MODULES)

## pgo: take a new CPU profile of the all-in-one under the bench's load (the
## non-stream window and the stream bursts, merged) into deployments/allinone/default.pgo,
## which every `go build` of the all-in-one uses (profile-guided optimisation).
PGO_TMP := $(or $(TMPDIR),/tmp)/gb-pgo
pgo:
	$(GO) run ./deployments/bench -reps 1 -dur 30s -profile $(PGO_TMP).pprof
	$(GO) tool pprof -proto $(PGO_TMP).pprof $(PGO_TMP)-bursts.pprof > $(PGO_TMP).pgo
	mv $(PGO_TMP).pgo deployments/allinone/default.pgo

## ui-vendor: re-fetch the admin UI's chart library (needs npm; run/test never do).
UPLOT_VERSION := 1.6.32
UPLOT_DIR     := admind/ui/static/vendor/uplot
ui-vendor:
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent uplot@$(UPLOT_VERSION) >/dev/null && tar xzf uplot-$(UPLOT_VERSION).tgz && cd - >/dev/null && \
	mkdir -p $(UPLOT_DIR) && cp $$tmp/package/dist/uPlot.iife.min.js $$tmp/package/dist/uPlot.min.css $$tmp/package/LICENSE $(UPLOT_DIR)/ && \
	rm -rf $$tmp && cd $(UPLOT_DIR) && { echo "uplot@$(UPLOT_VERSION)"; sha256sum uPlot.iife.min.js uPlot.min.css LICENSE; } > VERSION && cat VERSION

## vet: go vet, gofmt, and every module building alone (see modules).
vet: modules
	$(GO) vet $(MODULES)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

## modules: every go.mod is complete: GOWORK=off go build + go vet in each
## module (deployments/manifests included), as someone building one module sees it.
modules:
	GO=$(GO) scripts/modules.sh check

## modules-tidy: after an import moves, write the require/replace lines of the
## repo's own modules and GOWORK=off go mod tidy every module.
modules-tidy:
	GO=$(GO) scripts/modules.sh tidy

clean:
	rm -rf $(BIN)
