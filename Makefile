# Convenience targets; the scripts in scripts/ are the source of truth.
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build test demo bench deps clean
build:
	go build -o bin/deploylab ./cmd/deploylab
deps:
	scripts/install-deps.sh
test:
	scripts/test.sh
demo:
	scripts/demo.sh
bench:
	scripts/bench.sh
clean:
	rm -rf bin
