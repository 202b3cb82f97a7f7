#!/usr/bin/env bash
# The one-shot GPU check, on the GPU machine: unpacks bench/gpu/bin.tar.xz (from build.sh) and
# runs run.py, which prints the table and writes gpu-check.{md,json,log} to $OUT (or out/gpu).
#
#   bash bench/gpu/run.sh [run.py flags, e.g. --budget 400]
#
# Where there is no GPU, the same check runs against another XLA plugin, to test this script:
#   PJRT_PLUGIN_LIBRARY_PATH=/dir/with/pjrt_c_api_cpu_plugin.so bash bench/gpu/run.sh --accel xla:cpu --quick
set -euo pipefail
cd "$(dirname "$0")/../.."
bundle=bench/gpu/bin.tar.xz
[ -f "$bundle" ] || { echo "run.sh: no $bundle: run bench/gpu/build.sh on a machine with Go first" >&2; exit 1; }
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
if command -v xz >/dev/null; then
	xz -dc "$bundle" | tar -C "$bin" -xf -
else
	python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1], "r:xz").extractall(sys.argv[2])' "$bundle" "$bin"
fi
out="${OUT:-out/gpu}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python3 bench/gpu/run.py --bin "$bin" --out "$out" "$@"
