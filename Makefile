# Small, discoverable targets; logic that Go can hold lives in Go.
FUNCTIONS   := stream ticket status health simulator
GOFLAGS_FN  := -tags lambda.norpc -trimpath -ldflags='-s -w'
GO_TEST     ?= go test -race -count=1
# The CDK CLI comes from npm at a pinned version, installed in a folder that
# `go test ./...` ignores (a node_modules/ inside the module tree breaks it).
CDK_VERSION := 2.1148.1
CDK         := .cdk/node_modules/.bin/cdk

.PHONY: build test test-go test-infra dev bench fuzz lint synth deploy clean

build: $(FUNCTIONS:%=bin/%/bootstrap)

bin/%/bootstrap: FORCE
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(GOFLAGS_FN) -o $@ ./functions/$*

test: test-go test-infra

test-go:
	$(GO_TEST) ./...

test-infra:
	cd infra && $(GO_TEST) ./...

dev:
	go run ./functions/local

bench:
	go test -run '^$$' -bench . -benchmem ./...

fuzz:
	go run ./internal/fuzzall

lint:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo 'gofmt: files above need formatting' && exit 1)
	go vet ./...
	cd infra && go vet ./...

$(CDK):
	mkdir -p .cdk && cd .cdk && npm install --no-audit --no-fund --silent aws-cdk@$(CDK_VERSION)

synth: build $(CDK)
	$(CDK) synth --quiet

deploy: build $(CDK)
	$(CDK) deploy

clean:
	rm -rf bin cdk.out

FORCE:
