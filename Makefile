# Small, discoverable targets; logic that Go can hold lives in Go.
FUNCTIONS   := stream ticket status health simulator
# The Lambda binaries' build flags, read by internal/lambdatest too (the
# bootstrap tests build with them). lambda.norpc: aws-lambda-go without its
# legacy RPC mode; nethttpomithttp2: net/http without its bundled HTTP/2
# (320 KiB), which no function speaks: the Runtime API and Secrets Manager
# answer HTTP/1.1. The local server is built without them.
GOFLAGS_FN  := -tags lambda.norpc,nethttpomithttp2 -trimpath -ldflags='-s -w'
# The Lambda binaries' target, read by internal/lambdatest too (BuildTarget:
# the bootstrap size benchmark). GOARM64=v8.1: the atomics as Armv8.1's LSE
# instructions, not each behind a CPU check with a fallback (45 KiB of the
# stream bootstrap's code). Every arm64 Lambda runs on AWS Graviton,
# Graviton2 (Armv8.2-A) or later, which has them; on a CPU without them the
# runtime refuses to start.
GOENV_FN    := CGO_ENABLED=0 GOOS=linux GOARCH=arm64 GOARM64=v8.1
# Every test binary gets a deadline sized to the suite, so a test that hangs
# fails in minutes, not at go test's 10-minute default: the slowest package
# (internal/devserver, headless Chromium) takes 65-80 s on a loaded 2-core
# machine, the whole root module about 3 minutes. GO_TEST stays overridable.
TEST_TIMEOUT ?= 5m
# The CDK tests synthesize the stack through node (jsii): about 25 s.
INFRA_TEST_TIMEOUT ?= 3m
GO_TEST     ?= go test -race -count=1 -timeout=$(TEST_TIMEOUT)
# The CDK CLI comes from npm at a pinned version, installed in a folder that
# `go test ./...` ignores (a node_modules/ inside the module tree breaks it).
CDK_VERSION := 2.1148.1
CDK         := .cdk/node_modules/.bin/cdk

.PHONY: help build test test-go test-js test-infra dev bench fuzz lint synth deploy smoke clean

# `make` alone lists the targets: each documented one carries a `## what it
# does` comment on its rule line (README's table of targets is checked
# against these by a Go test).
help: ## list the targets
	@awk -F':.*## ' '/^[a-z-]+:.*## / { printf "  make %-11s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

build: $(FUNCTIONS:%=bin/%/bootstrap) ## bin/<fn>/bootstrap for linux/arm64 (the Lambda binaries)

bin/%/bootstrap: FORCE
	$(GOENV_FN) go build $(GOFLAGS_FN) -o $@ ./functions/$*

test: test-go test-js test-infra ## every test: Go with -race, the browser client with node --test, then the CDK tests in infra/ (without -race)

test-go: ## the root module's tests with -race
	$(GO_TEST) ./...

test-js: ## the browser client's parser and state machine (Node's own test runner)
	node --test internal/jsclient/

test-infra: ## the CDK tests in infra/ (needs node; run without -race)
	cd infra && JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 go test -count=1 -timeout=$(INFRA_TEST_TIMEOUT) ./...

# make dev DEV_FLAGS='-max-stream 30s -alert-every 10s'
dev: ## the local server (DEV_FLAGS='-h' lists its flags and environment)
	go run ./functions/local $(DEV_FLAGS)

bench: ## benchmarks, including the fan-out targets (docs/benchmarks.md)
	go test -run '^$$' -bench . -benchmem ./...

# Each fuzz target for FUZZTIME (go test fuzzes one target at a time).
FUZZTIME ?= 30s
FUZZ_TARGETS := internal/sse:FuzzEncode internal/access:FuzzUserID \
	internal/ticket:FuzzParse internal/pubsub:FuzzParse internal/device:FuzzParseQuery \
	internal/stream:FuzzParseCursor
fuzz: ## every fuzz target for FUZZTIME (30s) each
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $$t"; go test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) ./$${t%%:*}; done

# gofmt only our files: .cdk/node_modules ships .go templates that are not Go.
lint: ## gofmt and go vet, both modules
	@test -z "$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go') | tee /dev/stderr)" || \
		(echo 'gofmt: files above need formatting' && exit 1)
	go vet ./...
	cd infra && go vet ./...

$(CDK):
	mkdir -p .cdk && cd .cdk && npm install --no-audit --no-fund --silent aws-cdk@$(CDK_VERSION)

synth: build $(CDK) ## synthesize the CDK app into cdk.out/ (infra/README.md)
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 $(CDK) synth --quiet $(CDK_ARGS)
	@grep -q '"InvokeMode": "RESPONSE_STREAM"' cdk.out/MachineSse.template.json || \
		(echo 'synth: cdk.out/MachineSse.template.json is missing or has no streaming function URL' >&2; exit 1)

deploy: build $(CDK) ## deploy the CDK app (infra/README.md)
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 $(CDK) deploy $(CDK_ARGS)

# After a deploy: make smoke URL=https://<distribution> TOKEN=<access token> DEVICE=<deviceId>
# (the token goes to the command through its environment, not its arguments).
smoke: ## check a deployment through the edge: make smoke URL=... TOKEN=... DEVICE=...
	@SMOKE_TOKEN='$(TOKEN)' go run ./functions/smoke -url '$(URL)' -device '$(DEVICE)' $(SMOKE_FLAGS)

clean: ## remove bin/ and cdk.out/
	rm -rf bin cdk.out

FORCE:
