"""Shared helpers of bench/torch/lock.py and bench/interop/lock.py: exact pins
and sha256 hashes from pip itself, for a requirements file that installs with
`pip install --no-deps --require-hashes`.

`pip install --dry-run --report` resolves versions and gives each file's
sha256 without downloading the wheels. Hashes are collected for CPython 3.11
to 3.13 on manylinux x86_64, so a file installs on any of them.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

PYTHONS = ["3.11", "3.12", "3.13"]
PLATFORMS = [
    "manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_25_x86_64",
    "manylinux_2_24_x86_64", "manylinux_2_18_x86_64", "manylinux_2_17_x86_64",
    "manylinux2014_x86_64", "manylinux_2_12_x86_64", "manylinux2010_x86_64",
    "manylinux_2_5_x86_64", "manylinux1_x86_64",
]


def norm(name):
    """A distribution name in PEP 503 normal form."""
    return re.sub(r"[-_.]+", "-", name).lower()


def report(args):
    """The "install" list of `pip install --dry-run --report` for args."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "report.json")
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--disable-pip-version-check", "--report", path] + args
        subprocess.run(cmd, check=True)
        with open(path) as f:
            return json.load(f)["install"]


def hashes(pins):
    """{name: set of sha256} of the wheel files of each pinned version, for every supported Python."""
    out = {name: set() for name in pins}
    plat = [a for p in PLATFORMS for a in ("--platform", p)]
    reqs = [f"{n}=={v}" for n, v in pins.items()]
    for py in PYTHONS:
        with tempfile.TemporaryDirectory() as target:
            items = report(["--no-deps", "--only-binary=:all:", "--target", target,
                            "--python-version", py, "--implementation", "cp"] + plat + reqs)
        for item in items:
            name = norm(item["metadata"]["name"])
            h = item["download_info"].get("archive_info", {}).get("hashes", {}).get("sha256")
            if not h:
                sys.exit(f"lock.py: no sha256 for {name} on Python {py}")
            out[name].add(h)
    return out


def write(path, header, order, pins, file_hashes):
    """Writes a hash-pinned requirements file: header comment lines, then the pins in order."""
    lines = list(header) + [f"# Hashes cover CPython {', '.join(PYTHONS)} on manylinux x86_64."]
    for name in order:
        lines.append(f"{name}=={pins[name]} \\")
        hs = sorted(file_hashes[name])
        for i, h in enumerate(hs):
            lines.append(f"    --hash=sha256:{h}" + (" \\" if i < len(hs) - 1 else ""))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
