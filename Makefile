# peftlab: on a fresh Debian/Ubuntu machine with Go 1.26, two commands set everything up:
#
#   make lab    install what is missing, then start JupyterLab on 127.0.0.1 (the URL has the token)
#   make test   install what is missing, then go vet, go test and every notebook headless
#
# Every install step is idempotent (`go run ./kernel install` says "nothing to do" the second
# time); see kernel/ for what it installs and where.

# GOEXPERIMENT=simd compiles the AVX2/AVX-512 matrix-product kernels of GoMLX's pure-Go backend
# (Go 1.26's simd/archsimd); without it every product runs scalar loops, many times slower. It
# is exported to everything the Makefile runs (go vet, go test, the kernel, whose GoNB kernelspec
# and `exec` pass it on to every notebook cell) and spelled out on each go command line, so logs
# show it. A GOEXPERIMENT you set is kept, with simd appended unless it names simd already or
# opts out with nosimd: `make GOEXPERIMENT=nosimd test` builds the portable loops on purpose.
comma := ,
GOEXPERIMENT ?= simd
ifeq ($(strip $(GOEXPERIMENT)),)
override GOEXPERIMENT := simd
else ifeq ($(filter simd nosimd,$(subst $(comma), ,$(GOEXPERIMENT))),)
override GOEXPERIMENT := $(GOEXPERIMENT),simd
endif
export GOEXPERIMENT

GO        ?= go
GOCMD     := GOEXPERIMENT=$(GOEXPERIMENT) $(GO)
KERNEL    := $(GOCMD) run ./kernel
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
# Packages with go test benchmarks (a _test.go file declaring func Benchmark...).
BENCH_PKGS = $(sort $(patsubst %/,./%,$(dir $(shell grep -rl --include='*_test.go' '^func Benchmark' pkg kernel 2>/dev/null))))

.PHONY: lab test install data bench bench-xla test-xla bench-go notebooks

# Install JupyterLab with nbconvert from PyPI into a venv under ~/.cache/peftlab (hash-pinned:
# kernel/jupyter/requirements.txt; Debian's classic Notebook where PyPI cannot be reached), build
# GoNB and goimports, register the "peftlab" kernel, fetch the ECharts script and the data sets.
install:
	$(KERNEL) install

lab: install
	$(KERNEL) lab

# The same as CI (.ci/run). `install -test` also installs chromium for the chart tests and the
# JupyterLab browser test (kernel/jupyterlab_browser_test.go).
test:
	$(KERNEL) install -test
	$(GOCMD) vet ./...
	$(GOCMD) test ./...
	$(KERNEL) exec $(NOTEBOOKS)

# Execute the notebooks only (fast mode; add ARGS=-full for the full runs).
notebooks:
	$(KERNEL) exec $(ARGS) $(NOTEBOOKS)

data:
	$(KERNEL) data

# The reference benchmark against PyTorch (cmd/bench): prints the table and the ratio line,
# writes bench/results.json. Installs the PyTorch peer from PyPI on first use (never in `make test`).
# ARGS passes flags, e.g. make bench ARGS='-models bench-lm -rows ft'.
bench:
	$(GOCMD) run ./cmd/bench -json bench/results.json $(ARGS)

# The same table with peftlab on XLA's CPU compiler (GOMLX_BACKEND=xla:cpu; built with -tags xla,
# which needs cgo and a C compiler): installs XLA's CPU PJRT plugin from PyPI on first use
# (hash-pinned, 63 MB; `go run ./kernel xla-cpu` does only that) and writes bench/results-xla-cpu.json.
bench-xla:
	$(GOCMD) run -tags xla ./cmd/bench -backend xla:cpu -json bench/results-xla-cpu.json $(ARGS)

# The numerical tests of the model, the methods and the trainer on XLA's CPU compiler: the
# same references as on the pure-Go backend (float64 loops, formulas, stock gradients).
# Installs the plugin like bench-xla; never part of `make test`. Skipped: two trainer tests whose
# expected values were drawn with the Go backend's random numbers (XLA's generator draws others
# from the same seed: the Example's starting accuracy, a learning threshold tuned for Prompt).
XLA_TEST_PKGS := ./pkg/backend ./pkg/model ./pkg/peft/... ./pkg/trainer
XLA_TEST_SKIP := ^Example$$|^TestMethodsLearnAndTouchOnlyTheirWeights$$/^Prompt$$
test-xla:
	@vars="$$($(KERNEL) xla-cpu)" || exit 1; eval "$$vars"; \
		echo $(GOCMD) test -tags xla -count=1 -skip '$(XLA_TEST_SKIP)' $(ARGS) $(XLA_TEST_PKGS) "(GOMLX_BACKEND=$$GOMLX_BACKEND)"; \
		$(GOCMD) test -tags xla -count=1 -skip '$(XLA_TEST_SKIP)' $(ARGS) $(XLA_TEST_PKGS)

# The go test benchmarks of the packages.
bench-go:
	@if [ -z "$(BENCH_PKGS)" ]; then echo "no benchmarks found"; else \
		echo $(GOCMD) test -run '^$$' -bench . $(BENCH_PKGS); \
		$(GOCMD) test -run '^$$' -bench . $(BENCH_PKGS); fi

# The serving measurement (cmd/serve -measure): batch time against the number of distinct tasks
# in a batch for AdaLink, LoRA, FT and the bare base, and the memory of 1, 10 and 100 tasks;
# writes cmd/serve/measurement.json (the README's serving tables). A quick run that keeps that
# file: make serving ARGS='-fast -json /tmp/serving.json'.
.PHONY: serving
serving:
	$(GOCMD) run ./cmd/serve -measure -json cmd/serve/measurement.json $(ARGS)

# Hugging Face PEFT interop (bench/interop): peftlab's LoRA adapter files loaded by PEFT's
# PeftModel.from_pretrained and PEFT's save_pretrained files loaded by peftlab, logits and
# merge_and_unload within 1e-4. Installs PyTorch (bench/torch) and PEFT with safetensors
# (bench/interop/requirements.txt, hash-pinned) from PyPI on first use: GBs, so never in `make test`.
.PHONY: interop
interop:
	@out="$$(bench/interop/install.sh)" || { echo "interop: FAIL (install, see above)"; exit 1; }; \
	py="$$(printf '%s\n' "$$out" | tail -1)"; \
	if PEFTLAB_INTEROP_PYTHON="$$py" $(GOCMD) test -count=1 -v -run '^TestInterop$$' ./bench/interop/; then \
		echo "interop: PASS (peftlab <-> Hugging Face PEFT LoRA adapters, both ways, logits and merges within 1e-4)"; \
	else echo "interop: FAIL"; exit 1; fi

# The README's results section: the AdaLink paper's claims judged on full-mode runs. Runs the
# tutorials (02-05) with -full until no grid reports points left (a cell stops at its time
# budget and the next pass continues from the store; at most RESULTS_PASSES passes), then
# merges the store's finished full-mode runs into the committed archive results/runs.json,
# writes the section from the archive (cmd/results) and exports those runs to
# out/results/runs.{csv,json}. The store is one machine's cache; the archive is what
# accumulates across machines and sessions (commit it with the README).
# Hours on two CPU cores; never part of `make test`.
TUTORIALS      := $(filter notebooks/02_% notebooks/03_% notebooks/04_% notebooks/05_%,$(NOTEBOOKS))
RESULTS_PASSES ?= 30
.PHONY: results
results: install
	@mkdir -p out/results; for pass in $$(seq 1 $(RESULTS_PASSES)); do \
		echo "results: pass $$pass"; \
		$(KERNEL) exec -full $(TUTORIALS) || exit 1; \
		if ! grep -l "run again to continue" $(patsubst notebooks/%,out/notebooks/%,$(TUTORIALS)) >/dev/null 2>&1; then break; fi; \
		if [ $$pass = $(RESULTS_PASSES) ]; then echo "results: grids still incomplete after $$pass passes"; exit 1; fi; \
	done
	$(GOCMD) run ./cmd/results -store notebooks/runs -archive results/runs.json -readme README.md -csv out/results/runs.csv -json out/results/runs.json
