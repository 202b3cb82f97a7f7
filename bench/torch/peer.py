#!/usr/bin/env python3
"""PyTorch peer of peftlab's speed benchmark.

Re-implements peftlab's transformer (pkg/model) and its LoRA and AdaLink
adapters in eager PyTorch, times one benchmark row and prints exactly one JSON
line on stdout; everything else goes to stderr.

    peer.py --spec '{"model": {...}, "row": "lora", "batch": 8, "seq": 128, ...}'
    peer.py --spec-file spec.json

Threads: set OMP_NUM_THREADS (= the spec's "threads") and OMP_WAIT_POLICY=PASSIVE
in the environment of this process. OpenMP reads them when torch is imported,
so this script sets them itself (before importing torch) when they are unset,
but a caller that wants to be sure sets them: PASSIVE keeps idle OpenMP
workers from spinning on the cores the other side of the comparison needs.

See README.md beside this file for the whole spec and output contract.
"""

import argparse
import ctypes
import gc
import json
import math
import os
import re
import resource
import statistics
import sys
import time
import warnings
from fnmatch import fnmatchcase

ROWS = ("ft", "lora", "adalink", "forward", "matmul")
LM, CLS = "lm", "classification"

DEFAULTS = {
    "batch": 8,
    "seq": 128,
    "steps": 20,
    "warmup": 3,
    "lr": 1e-3,
    "weight_decay": 0.0,  # peftlab's trainer.Config default
    "rank": 8,
    "lora_targets": ["attn/q", "attn/v"],  # lora.DefaultTarget "block/*/attn/{q,v}"
    "lora_alpha": None,  # None: alpha = rank (PEFT's and peftlab's default), scale 1
    "lora_dropout": 0.0,
    "rslora": False,
    "adalink_modalities": None,  # None: every modality the model has
    "adalink_activation": "identity",
    "threads": None,  # None: leave torch's default
    "seed": 1,
    "matmul_n": 1024,
    "device": "cpu",
    "attention": "sdpa",  # or "math": explicit softmax(q·kᵀ/√dh + mask)·v, as peftlab's graph
    "optimizer": "default",  # torch.optim.AdamW implementation: "default", "foreach" or "fused"
    "objective": None,  # None: "lm" for a model with text, else "classification"
    "check": None,
}
KNOWN_KEYS = set(DEFAULTS) | {"model", "row"}

# GoMLX's Adam (pkg/ml/train/optimizers, which peftlab's trainer uses with
# LearningRate and WeightDecay only): betas 0.9/0.999, epsilon 1e-7 (not
# PyTorch's 1e-8), decoupled weight decay on every trainable weight.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-7

LN_EPS = 1e-5  # model.lnEpsilon
EMBED_STDDEV = 0.02  # model.embedStddev
BLOCKED = -1e9  # model.blocked, for attention="math"
BLOCK_LINEARS = ("attn/q", "attn/k", "attn/v", "attn/o", "mlp/up", "mlp/down")


class SpecError(Exception):
    """A problem with the spec, the model config or the check files."""


def log(*args):
    print("peer:", *args, file=sys.stderr, flush=True)


def read_spec(argv=None):
    p = argparse.ArgumentParser(description="PyTorch peer of peftlab's speed benchmark (one row, one JSON line).")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--spec", help="the spec as a JSON object")
    g.add_argument("--spec-file", help="a file holding the spec as a JSON object")
    a = p.parse_args(argv)
    try:
        if a.spec is not None:
            spec = json.loads(a.spec)
        else:
            with open(a.spec_file) as f:
                spec = json.load(f)
    except (OSError, ValueError) as e:
        raise SpecError(f"cannot read the spec: {e}") from e
    if not isinstance(spec, dict):
        raise SpecError("the spec must be a JSON object")
    return spec


def set_thread_env(threads):
    """Sets the OpenMP variables that must be in place before torch loads."""
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, str(int(threads)))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


if __name__ == "__main__":
    try:
        _SPEC = read_spec()
        set_thread_env(_SPEC.get("threads"))
    except SpecError as _e:
        log("error:", _e)
        sys.exit(1)

# The lean install has no NumPy, which torch only needs for .numpy(); it warns at import without it.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402  (after the OpenMP environment is set)
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

# Peak RSS once torch is loaded (about 0.5 GB for PyPI's CUDA build), before any model exists.
_IMPORT_RSS = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---------------------------------------------------------------- model config


class Config:
    """peftlab's model.Config (pkg/model/config.go), from its JSON form."""

    FIELDS = ("name", "vocab", "width", "heads", "blocks", "mlp_dim", "max_len", "image_size", "patch_size",
              "channels", "classes", "positions", "end_token")

    def __init__(self, d):
        if not isinstance(d, dict):
            raise SpecError("spec.model must be a JSON object (peftlab's model.Config)")
        unknown = set(d) - set(self.FIELDS)
        if unknown:
            raise SpecError(f"spec.model has unknown fields {sorted(unknown)}; model.Config has {list(self.FIELDS)}")
        self.name = d.get("name") or ""
        ints = {}
        for f in self.FIELDS:
            if f in ("name", "positions"):
                continue
            v = d.get(f, 0) or 0
            if not isinstance(v, int) or isinstance(v, bool):
                raise SpecError(f"spec.model.{f} must be an integer, got {v!r}")
            ints[f] = v
        self.vocab, self.width, self.heads, self.blocks = ints["vocab"], ints["width"], ints["heads"], ints["blocks"]
        self.mlp_dim, self.max_len = ints["mlp_dim"], ints["max_len"]
        self.image_size, self.patch_size, self.channels = ints["image_size"], ints["patch_size"], ints["channels"]
        self.classes, self.end_token = ints["classes"], ints["end_token"]
        self.positions = d.get("positions") or "learned"
        self.validate()

    @property
    def has_text(self):
        return self.vocab > 0

    @property
    def has_image(self):
        return self.image_size > 0 or self.patch_size > 0 or self.channels > 0

    @property
    def patches(self):
        if not self.has_image or self.patch_size <= 0:
            return 0
        side = self.image_size // self.patch_size
        return side * side

    @property
    def patch_dim(self):
        return self.patch_size * self.patch_size * self.channels

    @property
    def head_dim(self):
        return self.width // self.heads

    @property
    def num_positions(self):
        return self.patches + (self.max_len if self.has_text else 0)

    def model_name(self):
        if self.name:
            return self.name
        mods = "text+image" if self.has_text and self.has_image else "image" if self.has_image else "text"
        return f"transformer({mods}, d={self.width}, heads={self.heads}, blocks={self.blocks})"

    def validate(self):
        errs = []
        if self.width <= 0:
            errs.append(f"width must be positive, got {self.width}")
        if self.heads <= 0:
            errs.append(f"heads must be positive, got {self.heads}")
        elif self.width > 0 and self.width % self.heads:
            errs.append(f"width {self.width} is not divisible by heads {self.heads}")
        if self.blocks <= 0:
            errs.append(f"blocks must be at least 1, got {self.blocks}")
        if self.mlp_dim <= 0:
            errs.append(f"mlp_dim must be positive, got {self.mlp_dim}")
        if self.vocab < 0 or self.vocab == 1:
            errs.append(f"vocab must be 0 (no text) or >= 2, got {self.vocab}")
        if self.has_text and self.max_len <= 0:
            errs.append(f"max_len must be positive for a model with text, got {self.max_len}")
        if self.has_image:
            if self.image_size <= 0 or self.patch_size <= 0 or self.channels <= 0:
                errs.append("an image input needs image_size, patch_size and channels all positive")
            elif self.image_size % self.patch_size:
                errs.append(f"image_size {self.image_size} is not divisible by patch_size {self.patch_size}")
        if not self.has_text and not self.has_image:
            errs.append("the model has no input: set vocab and/or image_size, patch_size, channels")
        if self.classes < 0:
            errs.append(f"classes must be >= 0, got {self.classes}")
        if self.positions not in ("learned", "sinusoidal"):
            errs.append(f"positions must be \"learned\" or \"sinusoidal\", got {self.positions!r}")
        if errs:
            raise SpecError(f"model config {self.model_name()}: " + "; ".join(errs))

    def sites(self):
        """Layout().Sites: (name, kind, in, out) in data-flow order."""
        d = self.width
        out = []
        if self.has_text:
            out.append(("input/text", "input", d, d))
        if self.has_image:
            out.append(("input/image", "input", d, d))
            out.append(("embed/image/patch", "linear", self.patch_dim, d))
        for i in range(self.blocks):
            for n in BLOCK_LINEARS:
                fan_in = self.mlp_dim if n == "mlp/down" else d
                fan_out = self.mlp_dim if n == "mlp/up" else d
                out.append((f"block/{i}/{n}", "linear", fan_in, fan_out))
        if self.classes > 0:
            out.append(("head/cls", "linear", d, self.classes))
        if self.has_text:
            out.append(("head/lm", "linear", d, self.vocab))
        return out


# ---------------------------------------------------------------- layers


def sinusoidal_table(first, n, d):
    """model.SinusoidalTable: (p, i) = sin(p·ω) for even i, cos(p·ω) for odd i, ω = 10000^(-2⌊i/2⌋/d)."""
    rows = []
    for r in range(n):
        p = float(first + r)
        row = []
        for i in range(d):
            omega = math.pow(10000, -float(2 * (i // 2)) / float(d))
            row.append(math.sin(p * omega) if i % 2 == 0 else math.cos(p * omega))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64).to(torch.float32)


class LoRA(nn.Module):
    """LoRA update of one Linear site: y + scale·(dropout(x)·A)·B, A [in, r] ±1/√in, B [r, out] zero."""

    def __init__(self, fan_in, fan_out, rank, scale, dropout):
        super().__init__()
        bound = 1 / math.sqrt(fan_in)
        self.lora_A = nn.Parameter(torch.empty(fan_in, rank).uniform_(-bound, bound))
        self.lora_B = nn.Parameter(torch.zeros(rank, fan_out))
        self.scale, self.dropout = scale, dropout

    def forward(self, x, y):  # x [N, in], y [N, out]
        if self.dropout > 0 and self.training:
            x = F.dropout(x, self.dropout)
        return torch.addmm(y, x @ self.lora_A, self.lora_B, alpha=self.scale)


class Linear(nn.Module):
    """model.Linear: x·W + b with W [in, out] ("weights") and b [out] ("biases"), then the site's adapter."""

    def __init__(self, site, fan_in, fan_out):
        super().__init__()
        self.site = site
        limit = math.sqrt(6 / (fan_in + fan_out))  # Glorot-uniform, as GoMLX's initializer
        self.weights = nn.Parameter(torch.empty(fan_in, fan_out).uniform_(-limit, limit))
        self.biases = nn.Parameter(torch.zeros(fan_out))
        self.lora = None

    def forward(self, x):
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1])
        y = torch.addmm(self.biases, x2, self.weights)
        if self.lora is not None:
            y = self.lora(x2, y)
        return y.view(*lead, y.shape[-1])


class LayerNorm(nn.Module):
    """model.LayerNorm: normalise over the last axis (eps 1e-5), times "gain" plus "offset"."""

    def __init__(self, d):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(d))
        self.offset = nn.Parameter(torch.zeros(d))

    def forward(self, x):
        return F.layer_norm(x, (x.shape[-1],), self.gain, self.offset, LN_EPS)


class AdaLink(nn.Module):
    """AdaLink on one input modality: x + φ(x·A)·B, A [d, r] ±1/√d, B [r, d] zero."""

    def __init__(self, d, rank, activation="identity"):
        super().__init__()
        bound = 1 / math.sqrt(d)
        self.A = nn.Parameter(torch.empty(d, rank).uniform_(-bound, bound))
        self.B = nn.Parameter(torch.zeros(rank, d))
        if activation not in ("", "identity", "relu", "gelu", "tanh"):
            raise SpecError(f"unknown AdaLink activation {activation!r}: use identity, relu, gelu or tanh")
        self.activation = activation

    def forward(self, x):
        x2 = x.reshape(-1, x.shape[-1])
        h = x2 @ self.A
        if self.activation == "relu":
            h = F.relu(h)
        elif self.activation == "gelu":
            h = F.gelu(h)
        elif self.activation == "tanh":
            h = torch.tanh(h)
        return torch.addmm(x2, h, self.B).view_as(x)


def attention_mask(mask, prefix):
    """model.AttentionMask: allowed[b, q, k] for real-position mask [B, S] whose first prefix positions are
    image patches: k is real and (k < prefix or k <= q), or k == q."""
    s = mask.shape[1]
    q = torch.arange(s, device=mask.device).view(s, 1)
    k = torch.arange(s, device=mask.device).view(1, s)
    structural = (k <= q) | (k < prefix)
    allowed = structural.unsqueeze(0) & mask.unsqueeze(1)
    return allowed | (q == k).unsqueeze(0)


def attend(q, k, v, allowed, impl):
    """Scaled dot-product attention, q, k, v [B, H, S, dh], allowed [B, 1, S, S] Bool."""
    if impl == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    logits = (q @ k.transpose(-1, -2)) * (1 / math.sqrt(q.shape[-1]))
    logits = logits.masked_fill(~allowed, BLOCKED)
    return torch.softmax(logits, dim=-1) @ v


class Block(nn.Module):
    """One pre-LN block: x += attn(LN1(x)); x += MLP(LN2(x)), exact (erf) GELU."""

    def __init__(self, cfg, i):
        super().__init__()
        d, m = cfg.width, cfg.mlp_dim
        self.heads, self.dh = cfg.heads, cfg.head_dim
        self.ln1, self.ln2 = LayerNorm(d), LayerNorm(d)
        self.q = Linear(f"block/{i}/attn/q", d, d)
        self.k = Linear(f"block/{i}/attn/k", d, d)
        self.v = Linear(f"block/{i}/attn/v", d, d)
        self.o = Linear(f"block/{i}/attn/o", d, d)
        self.up = Linear(f"block/{i}/mlp/up", d, m)
        self.down = Linear(f"block/{i}/mlp/down", m, d)

    def linears(self):
        return [self.q, self.k, self.v, self.o, self.up, self.down]

    def forward(self, x, allowed, impl):
        b, s, d = x.shape
        h = self.ln1(x)

        def heads(lin):
            return lin(h).view(b, s, self.heads, self.dh).transpose(1, 2)

        a = attend(heads(self.q), heads(self.k), heads(self.v), allowed, impl)
        x = x + self.o(a.transpose(1, 2).reshape(b, s, d))
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class PeftlabModel(nn.Module):
    """peftlab's transformer (pkg/model): embeddings → input sites → position and type embeddings → pre-LN
    blocks with the prefix-LM mask → final LayerNorm → heads."""

    def __init__(self, cfg, attention="sdpa"):
        super().__init__()
        if attention not in ("sdpa", "math"):
            raise SpecError(f"attention must be \"sdpa\" or \"math\", got {attention!r}")
        self.cfg, self.attention = cfg, attention
        d = cfg.width
        if cfg.has_text:
            self.text_embed = nn.Parameter(torch.randn(cfg.vocab, d) * EMBED_STDDEV)
        if cfg.has_image:
            self.patch = Linear("embed/image/patch", cfg.patch_dim, d)
        if cfg.positions == "learned":
            self.pos = nn.Parameter(torch.randn(cfg.num_positions, d) * EMBED_STDDEV)
        else:
            self.register_buffer("pos", sinusoidal_table(0, cfg.num_positions, d), persistent=False)
        self.type_embed = nn.Parameter(torch.randn(2, d) * EMBED_STDDEV)  # row 0 image, row 1 text
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.blocks))
        self.final_ln = LayerNorm(d)
        if cfg.classes > 0:
            self.cls = Linear("head/cls", d, cfg.classes)
        if cfg.has_text:
            self.lm = Linear("head/lm", d, cfg.vocab)
        self.adalink = nn.ModuleDict()  # modality -> AdaLink
        self.adapter_names = {}  # peftlab name of each adapter weight -> Parameter

    # ------------------------------------------------------------ names

    def linear_sites(self):
        """Linear modules by site name, in layout order."""
        out = {}
        if self.cfg.has_image:
            out["embed/image/patch"] = self.patch
        for blk in self.blocks:
            for lin in blk.linears():
                out[lin.site] = lin
        if self.cfg.classes > 0:
            out["head/cls"] = self.cls
        if self.cfg.has_text:
            out["head/lm"] = self.lm
        return out

    def base_params(self):
        """The base weights under peftlab's variable names, in Layout().Params order."""
        out = {}

        def linear(lin):
            out[f"/{lin.site}/weights"] = lin.weights
            out[f"/{lin.site}/biases"] = lin.biases

        def layer_norm(scope, ln):
            out[f"/{scope}/gain"] = ln.gain
            out[f"/{scope}/offset"] = ln.offset

        if self.cfg.has_text:
            out["/embed/text/embeddings"] = self.text_embed
        if self.cfg.has_image:
            linear(self.patch)
        if self.cfg.positions == "learned":
            out["/embed/pos/embeddings"] = self.pos
        out["/embed/type/embeddings"] = self.type_embed
        for i, blk in enumerate(self.blocks):
            layer_norm(f"block/{i}/ln1", blk.ln1)
            for lin in blk.linears():
                if lin is blk.up:
                    layer_norm(f"block/{i}/ln2", blk.ln2)
                linear(lin)
        layer_norm("final_ln", self.final_ln)
        if self.cfg.classes > 0:
            linear(self.cls)
        if self.cfg.has_text:
            linear(self.lm)
        return out

    # ------------------------------------------------------------ adapters

    def add_lora(self, targets, rank, alpha=None, dropout=0.0, rslora=False, name="lora"):
        """Attaches LoRA to the Linear sites the targets select (see select_sites); returns their names."""
        if not isinstance(rank, int) or rank <= 0:
            raise SpecError(f"rank must be a positive integer, got {rank!r}")
        alpha = float(rank) if not alpha else float(alpha)
        if alpha < 0 or not math.isfinite(alpha):
            raise SpecError(f"lora_alpha must be a positive number, got {alpha}")
        if not 0 <= dropout < 1:
            raise SpecError(f"lora_dropout must be in [0, 1), got {dropout}")
        scale = alpha / math.sqrt(rank) if rslora else alpha / rank
        sites = select_sites(self.cfg, targets)
        linears = self.linear_sites()
        for s in sites:
            lin = linears[s]
            fan_in, fan_out = lin.weights.shape
            if rank > min(fan_in, fan_out):
                raise SpecError(f"rank r = {rank} is too large for site {s} ({fan_in} -> {fan_out})")
            lin.lora = LoRA(fan_in, fan_out, rank, scale, dropout)
            self.adapter_names[f"/adapters/{name}/{s}/lora_A"] = lin.lora.lora_A
            self.adapter_names[f"/adapters/{name}/{s}/lora_B"] = lin.lora.lora_B
        return sites

    def add_adalink(self, rank, modalities=None, activation="identity", name="adalink"):
        """Attaches a separate AdaLink to each input modality (default: all the model has)."""
        have = (["text"] if self.cfg.has_text else []) + (["image"] if self.cfg.has_image else [])
        mods = modalities or have
        if not isinstance(rank, int) or not 1 <= rank <= self.cfg.width:
            raise SpecError(f"AdaLink rank {rank!r} must be between 1 and the model width {self.cfg.width}")
        for m in mods:
            if m not in have:
                raise SpecError(f"model {self.cfg.model_name()} has no {m!r} modality; it has {have}")
        for m in have:  # layout order: text, then image
            if m in mods:
                self.adalink[m] = AdaLink(self.cfg.width, rank, activation or "identity")
                self.adapter_names[f"/adapters/{name}/input/{m}/A"] = self.adalink[m].A
                self.adapter_names[f"/adapters/{name}/input/{m}/B"] = self.adalink[m].B
        return [f"input/{m}" for m in have if m in mods]

    # ------------------------------------------------------------ forward

    def encode(self, tokens=None, images=None):
        """model.Encode: final hidden states [B, S, d] (patches first, then text) and the mask [B, S]."""
        cfg = self.cfg
        xs, masks, patches = [], [], 0
        if images is not None:
            b, h, w, c = images.shape
            p = cfg.patch_size
            x = images.reshape(b, h // p, p, w // p, p, c).permute(0, 1, 3, 2, 4, 5)
            x = self.patch(x.reshape(b, (h // p) * (w // p), p * p * c))
            if "image" in self.adalink:
                x = self.adalink["image"](x)
            patches = x.shape[1]
            x = x + (self.pos[:patches] + self.type_embed[0])
            xs.append(x)
            masks.append(torch.ones(b, patches, dtype=torch.bool, device=x.device))
        if tokens is not None:
            x = F.embedding(tokens, self.text_embed)
            if "text" in self.adalink:
                x = self.adalink["text"](x)
            t = x.shape[1]
            x = x + (self.pos[cfg.patches:cfg.patches + t] + self.type_embed[1])
            xs.append(x)
            masks.append(tokens != 0)
        x = xs[0] if len(xs) == 1 else torch.cat(xs, 1)
        mask = masks[0] if len(masks) == 1 else torch.cat(masks, 1)
        allowed = attention_mask(mask, patches).unsqueeze(1)  # [B, 1, S, S]: one mask for every head
        for blk in self.blocks:
            x = blk(x, allowed, self.attention)
        return self.final_ln(x), mask

    def lm_logits(self, tokens, images=None):
        """model.LMLogits: next-token logits [B, T, V] of the T text positions (head/lm)."""
        hidden, _ = self.encode(tokens, images)
        return self.lm(hidden[:, hidden.shape[1] - tokens.shape[1]:])

    def classify(self, tokens=None, images=None):
        """model.Classify: mean of the hidden states over real positions, through head/cls."""
        hidden, mask = self.encode(tokens, images)
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
        return self.cls(pooled)

    def loss(self, batch, objective):
        """trainer.lossFn: weighted mean cross-entropy, sum(nll·w) / max(sum(w), 1); w = Weights, or
        Targets != 0 for language modelling, or 1 per example for classification."""
        if objective == LM:
            logits = self.lm_logits(batch["tokens"], batch.get("images"))
            targets = batch["targets"]
            nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
            w = batch.get("weights")
            if w is None:
                w = (targets != 0).to(nll.dtype)
            w = w.reshape(-1)
        else:
            logits = self.classify(batch.get("tokens"), batch.get("images"))
            nll = F.cross_entropy(logits, batch["labels"], reduction="none")
            w = torch.ones_like(nll)
        return (nll * w).sum() / w.sum().clamp(min=1)


def select_sites(cfg, targets):
    """LoRA target selection. A target is a peftlab site pattern ("block/*/attn/{q,v}", "block/1/**",
    "head/lm"), "all-linear" (every Linear site outside the heads), or a bare site suffix such as "attn/q",
    meaning "block/*/attn/q". Every target must match a Linear site; returns names in layout order."""
    if isinstance(targets, str):
        targets = [targets]
    if not targets or not all(isinstance(t, str) and t for t in targets):
        raise SpecError(f"lora_targets must be a non-empty list of site names or patterns, got {targets!r}")
    sites = cfg.sites()
    chosen = set()
    for t in targets:
        if t == "all-linear":
            chosen |= {n for n, kind, _, _ in sites if kind == "linear" and not n.startswith("head/")}
            continue
        pattern = t if t.split("/", 1)[0] in ("block", "embed", "head", "input") else "block/*/" + t
        hit = [(n, kind) for n, kind, _, _ in sites if pattern_match(pattern, n)]
        if not hit:
            raise SpecError(f"LoRA target {t!r} matches no site of {cfg.model_name()}; its sites are "
                            + ", ".join(n for n, *_ in sites))
        for n, kind in hit:
            if kind != "linear":
                raise SpecError(f"LoRA adapts linear sites; {n} is an input site (use adalink)")
            chosen.add(n)
    return [n for n, *_ in sites if n in chosen]


def pattern_match(pattern, name):
    """site.Pattern.Match: path.Match per segment, {a,b} alternation, "**" for any number of segments."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if m:
        return any(pattern_match(pattern[:m.start()] + alt + pattern[m.end():], name) for alt in m.group(1).split(","))
    pat = pattern.strip("/").split("/")
    segs = name.strip("/").split("/")

    def match(i, j):
        if i == len(pat):
            return j == len(segs)
        if pat[i] == "**":
            return match(i + 1, j) or (j < len(segs) and match(i, j + 1))
        return j < len(segs) and fnmatchcase(segs[j], pat[i]) and match(i + 1, j + 1)

    return match(0, 0)


# ---------------------------------------------------------------- safetensors

ST_DTYPES = {
    "F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
ST_NAMES = {v: k for k, v in ST_DTYPES.items()}


def load_safetensors(path):
    """Reads a .safetensors file into {name: tensor} (CPU, copies), without the safetensors package."""
    try:
        with open(path, "rb") as f:
            data = bytearray(f.read())
    except OSError as e:
        raise SpecError(f"cannot read {path}: {e}") from e
    if len(data) < 8:
        raise SpecError(f"{path} is not a safetensors file (too short)")
    n = int.from_bytes(data[:8], "little")
    if 8 + n > len(data):
        raise SpecError(f"{path}: header of {n} bytes runs past the end of the file")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except ValueError as e:
        raise SpecError(f"{path}: bad safetensors header: {e}") from e
    base, out = 8 + n, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = ST_DTYPES.get(info.get("dtype"))
        if dt is None:
            raise SpecError(f"{path}: tensor {name} has unsupported dtype {info.get('dtype')!r}")
        shape = [int(s) for s in info["shape"]]
        start, end = (int(x) for x in info["data_offsets"])
        count = math.prod(shape)
        itemsize = torch.empty((), dtype=dt).element_size()
        if end - start != count * itemsize or base + end > len(data):
            raise SpecError(f"{path}: tensor {name} {info['dtype']}{shape} has a bad data range [{start}, {end})")
        if count == 0:
            out[name] = torch.empty(shape, dtype=dt)
        else:
            out[name] = torch.frombuffer(data, dtype=dt, count=count, offset=base + start).reshape(shape).clone()
    return out


def save_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} as a .safetensors file (little-endian, 8-byte aligned header)."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        raw = ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()) if t.numel() else b""
        header[name] = {"dtype": ST_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_weights(model, tensors, path="weights"):
    """Copies peftlab-named tensors into the model: every base weight must be there with its exact shape;
    adapter weights ("/adapters/<name>/<site>/lora_A", ".../input/<modality>/A") are optional; any other
    name is an error. GoMLX bookkeeping variables (a path segment starting with '#', as "/#rngState") are
    skipped."""
    base = model.base_params()
    adapters = {}
    for full, p in model.adapter_names.items():
        adapters[full.split("/", 3)[3]] = p  # drop "/adapters/<name>/"
    unknown, bad_shape, seen = [], [], set()
    with torch.no_grad():
        for name, t in tensors.items():
            if not name.startswith("/"):
                name = "/" + name  # "block/0/ln1/gain" is "/block/0/ln1/gain"
            if any(seg.startswith("#") for seg in name.split("/")):
                log(f"{path}: skipping GoMLX variable {name}")
                continue
            target = base.get(name)
            if target is None:
                m = re.match(r"^/adapters/[^/]+/(.+)$", name)
                target = adapters.get(m.group(1)) if m else None
            if target is None:
                unknown.append(name)
                continue
            if tuple(t.shape) != tuple(target.shape):
                bad_shape.append(f"{name} is {list(t.shape)}, the model's is {list(target.shape)}")
                continue
            if t.dtype != torch.float32:
                bad_shape.append(f"{name} is {ST_NAMES.get(t.dtype, t.dtype)}, want F32")
                continue
            target.copy_(t)
            seen.add(name)
    missing = [n for n in base if n not in seen]
    problems = []
    if unknown:
        problems.append(f"unknown to model {model.cfg.model_name()}: {', '.join(unknown)}")
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    if bad_shape:
        problems.append("; ".join(bad_shape))
    if problems:
        raise SpecError(f"{path}: " + " | ".join(problems))


def load_batch(cfg, tensors, path="batch"):
    """Turns a batch file's tensors (tokens, targets [B,T] I32; images [B,H,W,C] F32; optional labels [B]
    I32 and weights [B,T] F32) into model inputs; returns (batch, objective)."""
    want = {"tokens": (torch.int32, 2), "targets": (torch.int32, 2), "images": (torch.float32, 4),
            "labels": (torch.int32, 1), "weights": (torch.float32, 2)}
    unknown = sorted(set(tensors) - set(want))
    if unknown:
        raise SpecError(f"{path}: unknown tensors {unknown}; a batch holds {sorted(want)}")
    for name, t in tensors.items():
        dt, rank = want[name]
        if t.dtype != dt or t.dim() != rank:
            raise SpecError(f"{path}: {name} is {ST_NAMES.get(t.dtype)}{list(t.shape)}, "
                            f"want rank {rank} {ST_NAMES[dt]}")
    if "targets" in tensors and "labels" in tensors:
        raise SpecError(f"{path}: has both targets (language modelling) and labels (classification)")
    if "targets" not in tensors and "labels" not in tensors:
        raise SpecError(f"{path}: needs targets (language modelling) or labels (classification)")
    batch = {}
    if "tokens" in tensors:
        if not cfg.has_text:
            raise SpecError(f"{path}: has tokens but model {cfg.model_name()} has no text input")
        batch["tokens"] = tensors["tokens"].long()
    elif cfg.has_text and "targets" in tensors:
        raise SpecError(f"{path}: language modelling needs tokens")
    if "images" in tensors:
        if not cfg.has_image:
            raise SpecError(f"{path}: has images but model {cfg.model_name()} has no image input")
        batch["images"] = tensors["images"]
    elif cfg.has_image and not cfg.has_text:
        raise SpecError(f"{path}: model {cfg.model_name()} takes images")
    if "targets" in tensors:
        batch["targets"] = tensors["targets"].long()
        if "weights" in tensors:
            batch["weights"] = tensors["weights"]
        objective = LM
    else:
        if "weights" in tensors:
            raise SpecError(f"{path}: weights go with targets, not labels")
        batch["labels"] = tensors["labels"].long()
        objective = CLS
    check_batch(cfg, batch, objective, path)
    return batch, objective


def check_batch(cfg, batch, objective, what="batch"):
    sizes = {k: v.shape[0] for k, v in batch.items()}
    if len(set(sizes.values())) > 1:
        raise SpecError(f"{what}: batch sizes differ: {sizes}")
    tok = batch.get("tokens")
    if tok is not None:
        if tok.shape[1] > cfg.max_len:
            raise SpecError(f"{what}: {tok.shape[1]} tokens per example, model {cfg.model_name()} takes at most "
                            f"max_len {cfg.max_len}")
        if tok.numel() and (tok.min() < 0 or tok.max() >= cfg.vocab):
            raise SpecError(f"{what}: token ids must be in [0, {cfg.vocab})")
    im = batch.get("images")
    if im is not None and tuple(im.shape[1:]) != (cfg.image_size, cfg.image_size, cfg.channels):
        raise SpecError(f"{what}: images are {list(im.shape)}, model takes [B, {cfg.image_size}, {cfg.image_size}, "
                        f"{cfg.channels}]")
    if objective == LM:
        if not cfg.has_text:
            raise SpecError(f"model {cfg.model_name()} has no text, so no language-modelling loss")
        tg = batch["targets"]
        if tg.shape != tok.shape:
            raise SpecError(f"{what}: targets {list(tg.shape)} must match tokens {list(tok.shape)}")
        if tg.numel() and (tg.min() < 0 or tg.max() >= cfg.vocab):
            raise SpecError(f"{what}: targets must be in [0, {cfg.vocab})")
        w = batch.get("weights")
        if w is not None and (w.shape != tg.shape or not torch.isfinite(w).all()):
            raise SpecError(f"{what}: weights must be finite and shaped like targets {list(tg.shape)}")
    else:
        if cfg.classes <= 0:
            raise SpecError(f"model {cfg.model_name()} has no classification head (classes = 0)")
        lb = batch["labels"]
        if lb.numel() and (lb.min() < 0 or lb.max() >= cfg.classes):
            raise SpecError(f"{what}: labels must be in [0, {cfg.classes})")


def synthetic_batch(cfg, batch_size, seq, seed, objective):
    """Tokens uniform in [1, vocab) [B, T], targets = tokens shifted left by one (last = 1), images uniform
    [0, 1), labels uniform in [0, classes)."""
    g = torch.Generator().manual_seed(seed)
    batch = {}
    if cfg.has_text:
        if seq > cfg.max_len:
            raise SpecError(f"seq {seq} exceeds the model's max_len {cfg.max_len}")
        tok = torch.randint(1, cfg.vocab, (batch_size, seq), generator=g)
        batch["tokens"] = tok
        if objective == LM:
            tg = torch.ones_like(tok)
            tg[:, :-1] = tok[:, 1:]
            batch["targets"] = tg
    if cfg.has_image:
        batch["images"] = torch.rand(batch_size, cfg.image_size, cfg.image_size, cfg.channels, generator=g)
    if objective == CLS:
        batch["labels"] = torch.randint(0, cfg.classes, (batch_size,), generator=g)
    return batch


# ---------------------------------------------------------------- running


def build(spec, cfg):
    """Builds the model with the row's adapters; returns (model, trainable parameters)."""
    model = PeftlabModel(cfg, spec["attention"])
    row = spec["row"]
    if row == "lora":
        sites = model.add_lora(spec["lora_targets"], spec["rank"], spec["lora_alpha"], float(spec["lora_dropout"]),
                               bool(spec["rslora"]))
        log(f"LoRA r={spec['rank']} on {len(sites)} sites: {', '.join(sites)}")
    elif row == "adalink":
        sites = model.add_adalink(spec["rank"], spec["adalink_modalities"], spec["adalink_activation"])
        log(f"AdaLink r={spec['rank']} on {', '.join(sites)}")
    if row in ("lora", "adalink"):
        for p in model.base_params().values():
            p.requires_grad_(False)
        trainable = list(model.adapter_names.values())
    elif row == "ft":
        trainable = list(model.base_params().values())
    else:
        for p in model.parameters():
            p.requires_grad_(False)
        trainable = []
    return model, trainable


def sync_fn(device):
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def time_steps(fn, warmup, steps, sync):
    """Runs fn warmup + steps times; returns the timed steps' seconds and fn's first result as a float."""
    first = None
    for i in range(warmup):
        r = fn()
        if i == 0 and r is not None:
            first = float(r)
    sync()
    gc.collect()
    gc_was = gc.isenabled()
    gc.disable()
    times = []
    try:
        for _ in range(steps):
            t0 = time.perf_counter()
            r = fn()
            sync()
            times.append(time.perf_counter() - t0)
            if first is None and r is not None:
                first = float(r)
    finally:
        if gc_was:
            gc.enable()
    return times, first


def summary(times):
    if not times:
        return {"median_ms": None, "min_ms": None, "max_ms": None}
    return {"median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3, "max_ms": max(times) * 1e3}


def normalize(spec):
    unknown = set(spec) - KNOWN_KEYS
    if unknown:
        log(f"warning: ignoring unknown spec fields {sorted(unknown)}")
    out = dict(DEFAULTS)
    out.update({k: v for k, v in spec.items() if v is not None or k == "check"})
    if out.get("row") not in ROWS:
        raise SpecError(f"row must be one of {', '.join(ROWS)}, got {out.get('row')!r}")
    for k in ("batch", "seq", "steps", "warmup", "matmul_n", "seed"):
        v = out[k]
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise SpecError(f"{k} must be a non-negative integer, got {v!r}")
    for k in ("batch", "matmul_n"):
        if out[k] == 0:
            raise SpecError(f"{k} must be positive")
    if out["threads"] is not None and (not isinstance(out["threads"], int) or out["threads"] <= 0):
        raise SpecError(f"threads must be a positive integer, got {out['threads']!r}")
    for k, lo in (("lr", 0.0), ("weight_decay", 0.0)):
        v = out[k]
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= lo
        if not ok or (k == "lr" and v == 0):
            raise SpecError(f"{k} must be a {'positive' if k == 'lr' else 'non-negative'} number, got {v!r}")
    if out["optimizer"] not in ("default", "foreach", "fused"):
        raise SpecError(f"optimizer must be default, foreach or fused, got {out['optimizer']!r}")
    if out["row"] != "matmul" and "model" not in spec:
        raise SpecError(f"row {out['row']} needs spec.model (peftlab's model.Config JSON)")
    return out


def run(spec):
    spec = normalize(spec)
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    try:
        device = torch.device(spec["device"])
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as e:
        raise SpecError(f"device {spec['device']!r} is not usable: {e}") from e
    sync = sync_fn(device)
    row = spec["row"]
    out = {"row": row, "model": None, "median_ms": None, "min_ms": None, "max_ms": None, "steps": spec["steps"],
           "tokens_per_s": None, "gflops": None, "peak_rss_bytes": None, "torch": torch.__version__,
           "threads": torch.get_num_threads(), "trainable_params": None, "total_params": None, "loss": None,
           "import_rss_bytes": _IMPORT_RSS}

    if row == "matmul":
        n = spec["matmul_n"]
        g = torch.Generator().manual_seed(spec["seed"])
        a = torch.rand(n, n, generator=g).to(device)
        b = torch.rand(n, n, generator=g).to(device)
        c = torch.empty(n, n, device=device)

        def product():
            torch.mm(a, b, out=c)

        times, _ = time_steps(product, spec["warmup"], spec["steps"], sync)
        out.update(summary(times))
        out["model"] = spec["model"].get("name") if isinstance(spec.get("model"), dict) else None
        out["model"] = out["model"] or "matmul"
        out["matmul_n"] = n
        if times:
            out["gflops"] = 2 * n ** 3 / statistics.median(times) / 1e9
        out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return out

    cfg = Config(spec["model"])
    out["model"] = cfg.model_name()
    objective = spec["objective"] or (LM if cfg.has_text else CLS if cfg.classes > 0 else None)
    if objective not in (LM, CLS, None):
        raise SpecError(f"objective must be \"lm\" or \"classification\", got {objective!r}")
    if objective == CLS and cfg.classes <= 0:
        raise SpecError(f"model {cfg.model_name()} has no classification head (classes = 0)")
    model, trainable = build(spec, cfg)

    check = spec["check"]
    if check:
        if not isinstance(check, dict) or not check.get("weights") or not check.get("batch"):
            raise SpecError("check must be {\"weights\": path, \"batch\": path}")
        load_weights(model, load_safetensors(check["weights"]), check["weights"])
        batch, objective = load_batch(cfg, load_safetensors(check["batch"]), check["batch"])
        log(f"check: loaded {check['weights']} and {check['batch']} ({objective})")
    else:
        if objective is None and row != "forward":
            raise SpecError(f"model {cfg.model_name()} has neither text nor a classification head: nothing to train")
        batch = synthetic_batch(cfg, spec["batch"], spec["seq"], spec["seed"], objective)

    model.to(device)
    batch = {k: v.to(device) for k, v in batch.items()}
    bsz = next(iter(batch.values())).shape[0]
    text = batch["tokens"].shape[1] if "tokens" in batch else 0
    positions = (cfg.patches if "images" in batch else 0) + text
    out.update({"batch": bsz, "seq": text, "positions": positions, "device": str(device),
                "attention": spec["attention"], "objective": objective})

    if check:
        model.eval()
        with torch.no_grad():
            out["check_loss"] = model.loss(batch, objective).item()
        log(f"check_loss {out['check_loss']:.6f}")

    params = list(model.parameters())
    out["total_params"] = sum(p.numel() for p in params)
    out["trainable_params"] = sum(p.numel() for p in trainable)

    if row == "forward":
        model.eval()

        def step():
            with torch.no_grad():
                if objective is None:
                    model.encode(batch.get("tokens"), batch.get("images"))
                    return None
                return model.loss(batch, objective)
    else:
        model.train()
        kw = {}
        if spec["optimizer"] == "foreach":
            kw["foreach"] = True
        elif spec["optimizer"] == "fused":
            kw["fused"] = True
        opt = torch.optim.AdamW(trainable, lr=spec["lr"], betas=ADAM_BETAS, eps=ADAM_EPS,
                                weight_decay=spec["weight_decay"], **kw)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = model.loss(batch, objective)
            loss.backward()
            opt.step()
            return loss.detach()

    times, first = time_steps(step, spec["warmup"], spec["steps"], sync)
    out.update(summary(times))
    if times:
        out["tokens_per_s"] = bsz * positions / statistics.median(times)
    out["loss"] = first if first is not None else out.get("check_loss")
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def main(spec):
    t0 = time.perf_counter()
    try:
        out = run(spec)
    except SpecError as e:
        log("error:", e)
        return 1
    except Exception:  # noqa: BLE001  (report anything else with its traceback, still exit 1)
        import traceback
        traceback.print_exc(file=sys.stderr)
        return 1
    log(f"{out['row']} {out['model']}: median {out['median_ms']} ms over {out['steps']} steps, "
        f"{time.perf_counter() - t0:.1f}s in all")
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(_SPEC))
