# pvisor — see README.md. The two entry points for a new machine:
#   make run    build what is missing and boot the default guest
#   make test   everything CI checks
GO      ?= go
BIN     := build/pvisor
TESTTIMEOUT ?= 60m

.PHONY: all build run test deps fmt-check vet generate gen-check unit bench clean

all: build

deps:
	@scripts/install-deps.sh

build:
	@mkdir -p build
	$(GO) build -o $(BIN) ./cmd/pvisor

run: deps build
	$(BIN) run

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

generate:
	$(GO) generate ./...

# Generated files must be fresh: regenerate and compare with the tree.
gen-check:
	@$(GO) generate ./... && git diff --exit-code --stat -- . || \
		{ echo "generated files are stale: run 'make generate' and commit"; exit 1; }

unit:
	$(GO) test -timeout $(TESTTIMEOUT) ./...

test: deps fmt-check vet gen-check unit

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./hv/interp

clean:
	rm -rf build
