# Small, discoverable targets; logic that Go can hold lives in Go.
FUNCTIONS   := stream ticket status health simulator
GOFLAGS_FN  := -tags lambda.norpc -trimpath -ldflags='-s -w'
GO_TEST     ?= go test -race -count=1
# The CDK CLI comes from npm at a pinned version, installed in a folder that
# `go test ./...` ignores (a node_modules/ inside the module tree breaks it).
CDK_VERSION := 2.1148.1
CDK         := .cdk/node_modules/.bin/cdk

.PHONY: build test test-go test-js test-infra dev bench fuzz lint synth deploy smoke clean

build: $(FUNCTIONS:%=bin/%/bootstrap)

bin/%/bootstrap: FORCE
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(GOFLAGS_FN) -o $@ ./functions/$*

test: test-go test-js test-infra

test-go:
	$(GO_TEST) ./...

# The browser client's parser and state machine (Node's own test runner).
test-js:
	node --test internal/jsclient/

test-infra:
	cd infra && JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 go test -count=1 ./...

# make dev DEV_FLAGS='-max-stream 30s -alert-every 10s'
dev:
	go run ./functions/local $(DEV_FLAGS)

bench:
	go test -run '^$$' -bench . -benchmem ./...

# Each fuzz target for FUZZTIME (go test fuzzes one target at a time).
FUZZTIME ?= 30s
FUZZ_TARGETS := internal/sse:FuzzEncode internal/sse:FuzzComment internal/access:FuzzUserID \
	internal/ticket:FuzzParse internal/pubsub:FuzzParse internal/device:FuzzParseQuery \
	internal/stream:FuzzParseCursor
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $$t"; go test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) ./$${t%%:*}; done

# gofmt only our files: .cdk/node_modules ships .go templates that are not Go.
lint:
	@test -z "$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go') | tee /dev/stderr)" || \
		(echo 'gofmt: files above need formatting' && exit 1)
	go vet ./...
	cd infra && go vet ./...

$(CDK):
	mkdir -p .cdk && cd .cdk && npm install --no-audit --no-fund --silent aws-cdk@$(CDK_VERSION)

synth: build $(CDK)
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 $(CDK) synth --quiet $(CDK_ARGS)
	@grep -q '"InvokeMode": "RESPONSE_STREAM"' cdk.out/MachineSse.template.json || \
		(echo 'synth: cdk.out/MachineSse.template.json is missing or has no streaming function URL' >&2; exit 1)

deploy: build $(CDK)
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 $(CDK) deploy $(CDK_ARGS)

# After a deploy: make smoke URL=https://<distribution> TOKEN=<access token> DEVICE=<deviceId>
# (the token goes to the command through its environment, not its arguments).
smoke:
	@SMOKE_TOKEN='$(TOKEN)' go run ./functions/smoke -url '$(URL)' -device '$(DEVICE)' $(SMOKE_FLAGS)

clean:
	rm -rf bin cdk.out

FORCE:
