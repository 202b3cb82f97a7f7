#!/usr/bin/env python3
"""Hugging Face PEFT's side of `make interop` (driven by interop_test.go).

    interop.py load  DIR   # (a) PeftModel.from_pretrained of peftlab's adapter, merge_and_unload
    interop.py train DIR   # (b) get_peft_model, a few Adam steps, save_pretrained

DIR holds what the Go test wrote: model.json (peftlab's model.Config),
base.safetensors (the base weights under peftlab's names) and
batch.safetensors (tokens [B, T] I32); for `load` also adapter/ (saved by
peft.SaveAdapter) and peftlab.safetensors (peftlab's logits with the adapter,
its merged logits, and its merged weights under "merged/<site>"). `load`
checks PEFT's numbers against peftlab's and prints one PASS or FAIL line per
check; it exits 1 on any FAIL. `train` writes peft_adapter/ (save_pretrained)
and peft.safetensors (PEFT's logits, merged logits and merged weights) for
the Go side to check.
"""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a hub: the twin is a plain nn.Module
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import twin  # noqa: E402  (also puts bench/torch on sys.path)
import peer  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

import peft  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402

TOL = 1e-4  # logits
WTOL = 1e-5  # merged weights


def setup(d):
    with open(os.path.join(d, "model.json")) as f:
        cfg = peer.Config(json.load(f))
    torch.manual_seed(1)
    model = twin.Twin(cfg)
    twin.load_base(model, load_file(os.path.join(d, "base.safetensors")))
    tokens = load_file(os.path.join(d, "batch.safetensors"))["tokens"].long()
    return cfg, model, tokens


def maxdiff(a, b):
    return (a.double() - b.double()).abs().max().item()


def merged_weights(model, sites):
    w = twin.linear_weights(model)
    return {f"merged/{s}": w[s] for s in sites}


def check(name, diff, tol, results):
    ok = diff <= tol
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name}: max |diff| = {diff:.3g} (tolerance {tol:g})", flush=True)


def load(d):
    cfg, model, tokens = setup(d)
    want = load_file(os.path.join(d, "peftlab.safetensors"))
    base_logits = model(tokens).detach()
    pm = PeftModel.from_pretrained(model, os.path.join(d, "adapter"))
    pm.eval()
    results = []
    with torch.no_grad():
        got = pm(tokens)
    moved = maxdiff(want["logits"], base_logits)
    print(f"info: peftlab's adapter moves the logits by {moved:.3g} from the base's; "
          f"PEFT adapted {len(pm.peft_config['default'].target_modules)} modules", flush=True)
    results.append(moved > 1e-3)
    if moved <= 1e-3:
        print("FAIL the adapter does not change the logits: the check would prove nothing", flush=True)
    check("(a) peftlab adapter loaded by PeftModel.from_pretrained: logits vs peftlab's", maxdiff(got, want["logits"]), TOL, results)
    merged = pm.merge_and_unload()
    with torch.no_grad():
        got = merged(tokens)
    check("(c) PEFT merge_and_unload logits vs peftlab lora.Merge logits", maxdiff(got, want["merged_logits"]), TOL, results)
    w = twin.linear_weights(merged)
    wd = max(maxdiff(w[k.removeprefix("merged/")], v) for k, v in want.items() if k.startswith("merged/"))
    check("(c) PEFT merge_and_unload weights vs peftlab lora.Merge weights", wd, WTOL, results)
    return all(results)


def train(d, steps=5):
    cfg, model, tokens = setup(d)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q", "v", "down"], lora_dropout=0.0)
    pm = get_peft_model(model, config)
    targets = torch.cat([tokens[:, 1:], torch.zeros_like(tokens[:, :1])], 1)
    opt = torch.optim.Adam([p for p in pm.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        logits = pm(tokens)
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
        w = (targets != 0).float().reshape(-1)
        ((nll * w).sum() / w.sum().clamp(min=1)).backward()
        opt.step()
    b = max(p.abs().max().item() for n, p in pm.named_parameters() if "lora_B" in n)
    print(f"info: PEFT trained {steps} steps; max |lora_B| = {b:.3g}", flush=True)
    if b == 0:
        print("FAIL PEFT's training left lora_B at zero", flush=True)
        return False
    pm.save_pretrained(os.path.join(d, "peft_adapter"))
    pm.eval()
    with torch.no_grad():
        out = {"logits": pm(tokens).contiguous()}
    sites = sorted(n.replace(".", "/") for n in pm.peft_config["default"].target_modules)
    merged = pm.merge_and_unload()
    with torch.no_grad():
        out["merged_logits"] = merged(tokens).contiguous()
    adapted = sorted(s for s in twin.linear_weights(merged) if s.rsplit("/", 1)[-1] in sites)
    out.update(merged_weights(merged, adapted))
    save_file(out, os.path.join(d, "peft.safetensors"))
    return True


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("load", "train"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    print(f"info: torch {torch.__version__}, peft {peft.__version__}", flush=True)
    ok = load(sys.argv[2]) if sys.argv[1] == "load" else train(sys.argv[2])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
