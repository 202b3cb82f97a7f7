# peftlab: on a fresh Debian/Ubuntu machine with Go 1.26, two commands set everything up:
#
#   make lab    install what is missing, then start Jupyter on 127.0.0.1 (the URL has the token)
#   make test   install what is missing, then go vet, go test and every notebook headless
#
# Every install step is idempotent (`go run ./kernel install` says "nothing to do" the second
# time); see kernel/ for what it installs and where.

GO        ?= go
KERNEL    := $(GO) run ./kernel
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
# Packages with benchmarks (a _test.go file declaring func Benchmark...).
BENCH_PKGS = $(sort $(patsubst %/,./%,$(dir $(shell grep -rl --include='*_test.go' '^func Benchmark' pkg kernel 2>/dev/null))))

.PHONY: lab test install data bench notebooks

# Build GoNB and goimports, install Jupyter (Debian packages) when missing, register the
# "peftlab" kernel, fetch the ECharts script and the data sets.
install:
	$(KERNEL) install

lab: install
	$(KERNEL) lab

# The same as CI (.ci/run). `install -test` also installs chromium for the chart test.
test:
	$(KERNEL) install -test
	$(GO) vet ./...
	$(GO) test ./...
	$(KERNEL) exec $(NOTEBOOKS)

# Execute the notebooks only (fast mode; add ARGS=-full for the full runs).
notebooks:
	$(KERNEL) exec $(ARGS) $(NOTEBOOKS)

data:
	$(KERNEL) data

bench:
	@if [ -z "$(BENCH_PKGS)" ]; then echo "no benchmarks found"; else \
		echo $(GO) test -run '^$$' -bench . $(BENCH_PKGS); \
		$(GO) test -run '^$$' -bench . $(BENCH_PKGS); fi
