# Convenience targets; the scripts in scripts/ are the source of truth.
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build test demo bench deps clean class
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
# The grader against the class of 17 student VMs (grade/testdata/class):
# about 8 minutes on 2 cores; also part of `make test` (scripts/test.sh).
class:
	go test -count=1 -timeout 40m -run TestClassLab -v ./grade/
