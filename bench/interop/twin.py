"""A PyTorch twin of a peftlab base that Hugging Face PEFT can adapt.

bench/torch/peer.py re-implements peftlab's transformer with its own Linear
(weights [in, out], as peftlab stores them), which PEFT cannot wrap. The twin
computes exactly the same function with plain nn.Linear modules, nested so
that each module's name is its peftlab site with "." for "/"
(lora.ModuleName): site block/0/attn/q is module block.0.attn.q, head/lm is
head.lm, embed/image/patch is embed.image.patch. PEFT's target_modules,
LoRA keys ("base_model.model.block.0.attn.q.lora_A.weight") and
merge_and_unload then line up with peftlab's adapter files.

The layers, the mask and the attention are peer.py's (the peer matches
peftlab to 1e-7); only the module tree is new. Base weights load from a
safetensors file under peftlab's variable names (/block/0/attn/q/weights
[in, out], transposed into nn.Linear's [out, in]).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch"))

import peer  # noqa: E402  (bench/torch/peer.py: Config, LayerNorm, attention_mask, attend)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402


class Table(nn.Module):
    """An embedding table: the parameter "embeddings" [rows, d], as peftlab's /embed/*/embeddings."""

    def __init__(self, rows, d):
        super().__init__()
        self.embeddings = nn.Parameter(torch.zeros(rows, d))


class Attn(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))


class MLP(nn.Module):
    def __init__(self, d, m):
        super().__init__()
        self.up, self.down = nn.Linear(d, m), nn.Linear(m, d)


class Block(nn.Module):
    """peer.Block with the module tree of peftlab's sites: ln1, attn.{q,k,v,o}, ln2, mlp.{up,down}."""

    def __init__(self, cfg):
        super().__init__()
        d = cfg.width
        self.heads, self.dh = cfg.heads, cfg.head_dim
        self.ln1, self.ln2 = peer.LayerNorm(d), peer.LayerNorm(d)
        self.attn, self.mlp = Attn(d), MLP(d, cfg.mlp_dim)

    def forward(self, x, allowed, impl):
        b, s, d = x.shape
        h = self.ln1(x)

        def heads(lin):
            return lin(h).view(b, s, self.heads, self.dh).transpose(1, 2)

        a = peer.attend(heads(self.attn.q), heads(self.attn.k), heads(self.attn.v), allowed, impl)
        x = x + self.attn.o(a.transpose(1, 2).reshape(b, s, d))
        return x + self.mlp.down(F.gelu(self.mlp.up(self.ln2(x))))


class Twin(nn.Module):
    """peftlab's text transformer (pkg/model) with site-named modules; forward(tokens) = model.LMLogits."""

    def __init__(self, cfg, attention="math"):
        super().__init__()
        if cfg.has_image:
            raise peer.SpecError("the twin covers text bases only")
        if cfg.positions != "learned":
            raise peer.SpecError("the twin covers learned positions only")
        self.cfg, self.attention = cfg, attention
        d = cfg.width
        self.embed = nn.Module()
        self.embed.text = Table(cfg.vocab, d)
        self.embed.pos = Table(cfg.num_positions, d)
        self.embed._modules["type"] = Table(2, d)  # add_module refuses the name: nn.Module has a method type()
        self.block = nn.ModuleList(Block(cfg) for _ in range(cfg.blocks))
        self.final_ln = peer.LayerNorm(d)
        self.head = nn.Module()
        if cfg.classes > 0:
            self.head.cls = nn.Linear(d, cfg.classes)
        self.head.lm = nn.Linear(d, cfg.vocab)

    def forward(self, tokens):
        x = F.embedding(tokens, self.embed.text.embeddings)
        t = x.shape[1]
        typ = self.embed._modules["type"]  # not self.embed.type: nn.Module has a method type()
        x = x + (self.embed.pos.embeddings[:t] + typ.embeddings[1])
        allowed = peer.attention_mask(tokens != 0, 0).unsqueeze(1)
        for blk in self.block:
            x = blk(x, allowed, self.attention)
        return self.head.lm(self.final_ln(x))


def state_key(peftlab_name):
    """The twin's state_dict key of a peftlab variable, and whether nn.Linear holds it transposed:
    /block/0/attn/q/weights -> (block.0.attn.q.weight, True), /block/0/ln1/gain -> (block.0.ln1.gain, False)."""
    path = peftlab_name.strip("/").split("/")
    if path[-1] == "weights":
        return ".".join(path[:-1] + ["weight"]), True
    if path[-1] == "biases":
        return ".".join(path[:-1] + ["bias"]), False
    return ".".join(path), False


def load_base(model, tensors):
    """Copies peftlab-named base weights into the twin; every twin parameter must be set exactly once."""
    own = dict(model.named_parameters())
    seen = set()
    with torch.no_grad():
        for name, t in tensors.items():
            key, transposed = state_key(name)
            if key not in own:
                raise peer.SpecError(f"base weight {name} ({key}) is not a parameter of the twin")
            t = t.t() if transposed else t
            if tuple(t.shape) != tuple(own[key].shape):
                raise peer.SpecError(f"base weight {name} is {list(t.shape)}, the twin's {key} is {list(own[key].shape)}")
            own[key].copy_(t)
            seen.add(key)
    missing = sorted(set(own) - seen)
    if missing:
        raise peer.SpecError(f"base weights missing: {missing}")


def linear_weights(model):
    """The weight of every nn.Linear in peftlab's orientation [in, out] under its site name."""
    return {name.replace(".", "/"): m.weight.detach().t().contiguous()
            for name, m in model.named_modules() if isinstance(m, nn.Linear)}
