#!/usr/bin/env bash
# Builds, on a CPU machine, everything the one-shot GPU check (bench/gpu/run.py) runs on a GPU
# machine that has no Go toolchain, and packs it into bench/gpu/bin.tar.xz (ignored by git;
# carry it to the GPU machine):
#
#   bash bench/gpu/build.sh            # then, on the GPU machine: bash bench/gpu/run.sh
#
# kernel: `kernel gpu -env` finds the CUDA plugin there, as `install -gpu` does. gpuprobe,
# bench (cmd/bench) and the core packages' test binaries are built with -tags xla (cgo, amd64,
# GOEXPERIMENT=simd for the CPU rows), stripped. The bundle must stay well under the 64 MiB that
# travel to the GPU machine with the working tree.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=bench/gpu/bin
rm -rf "$out" bench/gpu/bin.tar.xz
mkdir -p "$out/tests"
export GOEXPERIMENT="${GOEXPERIMENT:-simd}" CGO_ENABLED=1 GOOS=linux GOARCH=amd64
flags=(-trimpath -ldflags='-s -w')
go build "${flags[@]}" -o "$out/kernel" ./kernel
go build "${flags[@]}" -tags xla -o "$out/gpuprobe" ./kernel/gpuprobe
go build "${flags[@]}" -tags xla -o "$out/bench" ./cmd/bench
# The core packages: the model, the PEFT methods and the trainer (their tests' expected values
# are the CPU's; run.py runs each binary in its package directory, for testdata).
for pkg in backend model peft/lora peft/adalink peft/full peft/prompt trainer; do
	go test -c "${flags[@]}" -tags xla -o "$out/tests/${pkg//\//_}.test" "./pkg/$pkg"
done
tar -C "$out" -cf - . | xz -T0 -6 >bench/gpu/bin.tar.xz
size=$(stat -c %s bench/gpu/bin.tar.xz)
echo "build.sh: bench/gpu/bin.tar.xz $((size / 1048576)) MiB ($(ls "$out" "$out/tests" | grep -vc ':$') files)"
if [ "$size" -gt $((48 * 1048576)) ]; then
	echo "build.sh: the bundle is over 48 MiB: with the working tree it may not fit the 64 MiB that travel" >&2
	exit 1
fi
