#!/usr/bin/env bash
# Installs PyTorch for the speed benchmark's peer (bench/torch/peer.py) into a
# virtualenv and prints the venv's python as the last line of stdout.
#
#   bench/torch/install.sh [VENV]
#
# VENV defaults to ${PEFTLAB_CACHE:-$HOME/.cache/peftlab}/torch-venv; PYTHON
# picks the interpreter that makes it (default python3, which must be >= 3.11).
#
# The lean way (see lock.py): pip install --no-deps --require-hashes of
# requirements.txt, which pins torch, its pure-Python dependencies and only the
# NVIDIA libraries libtorch is linked against (PyPI's Linux torch is a CUDA
# build that cannot even be imported without them, GPU or not), leaving out
# triton, cuSOLVER, NVTX and the CUDA Python bindings. If that torch cannot
# import or train on the CPU, it falls back to a plain `pip install torch==V`
# with all of torch's declared dependencies (unhashed).
#
# Idempotent: with the venv in place and the pinned torch importable it says
# "torch V already installed" and changes nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$here/requirements.txt"
venv="${1:-${PEFTLAB_CACHE:-$HOME/.cache/peftlab}/torch-venv}"
python="${PYTHON:-python3}"
py="$venv/bin/python"

log() { echo "install.sh: $*" >&2; }

want="$(sed -n 's/^torch==\([^ ]*\).*/\1/p' "$req")"
if [ -z "$want" ]; then
	log "no torch==VERSION line in $req"
	exit 1
fi

# check_torch prints torch's version and exits 0 when the venv's torch is the
# pinned one and can run a tiny training step on the CPU.
check_torch() {
	[ -x "$py" ] || return 1
	"$py" - "$want" <<'EOF' 2>/dev/null
import sys
import torch
want = sys.argv[1]
if torch.__version__.split("+")[0] != want:
    sys.exit(1)
w = torch.randn(8, 8, requires_grad=True)
x = torch.randn(4, 8)
loss = torch.nn.functional.gelu(torch.matmul(x, w)).square().mean()
loss.backward()
torch.optim.AdamW([w], lr=1e-3).step()
assert w.grad is not None and torch.isfinite(w).all()
print(torch.__version__)
EOF
}

if have="$(check_torch)"; then
	echo "torch $have already installed"
	echo "$py"
	exit 0
fi

if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
	log "$python is missing or older than 3.11 (torch $want needs >= 3.11); set PYTHON to a newer interpreter"
	exit 1
fi

start=$SECONDS
if [ ! -x "$py" ]; then
	log "creating virtualenv $venv"
	mkdir -p "$(dirname "$venv")"
	"$python" -m venv "$venv"
fi

pipi() { "$py" -m pip install --disable-pip-version-check --no-cache-dir --no-input "$@"; }

log "installing torch $want (lean: --no-deps --require-hashes -r $req)"
if pipi --no-deps --require-hashes -r "$req" >&2 && have="$(check_torch)"; then
	log "lean install works"
else
	log "lean install failed or torch does not work without its other dependencies; installing torch==$want with all of them"
	pipi "torch==$want" >&2
	if ! have="$(check_torch)"; then
		log "torch $want still does not import and train; see the messages above"
		"$py" -c 'import torch' >&2 || true
		exit 1
	fi
fi
log "torch $have installed in $((SECONDS - start))s, venv $(du -sh "$venv" | cut -f1)"
echo "$py"
