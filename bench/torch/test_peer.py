"""Tests of the PyTorch peer (peer.py). Run with the venv's python:

    ~/.cache/peftlab/torch-venv/bin/python bench/torch/test_peer.py      # plain runner
    python -m pytest bench/torch/test_peer.py                              # where torch and pytest are

Skipped (not failed) where torch is not importable.
"""

import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")  # the lean install has no NumPy

try:
    import torch
except ImportError:  # no torch here: skip everything
    torch = None
    if "pytest" in sys.modules:
        import pytest

        pytest.skip("torch is not importable (run bench/torch/install.sh)", allow_module_level=True)
    elif __name__ == "__main__":
        print("test_peer.py: torch is not importable, skipping (run bench/torch/install.sh)")
        print("0 passed, 0 failed, 1 skipped")
        sys.exit(0)

if torch is not None:
    import peer

TEXT = {"name": "tiny-text", "vocab": 23, "width": 16, "heads": 2, "blocks": 2, "mlp_dim": 24, "max_len": 9}
IMAGE = {"name": "tiny-image", "width": 16, "heads": 4, "blocks": 1, "mlp_dim": 20, "image_size": 4,
         "patch_size": 2, "channels": 3, "classes": 5}
MULTI = {"name": "tiny-mm", "vocab": 19, "width": 12, "heads": 3, "blocks": 2, "mlp_dim": 16, "max_len": 6,
         "image_size": 6, "patch_size": 3, "channels": 2, "classes": 4}


def perturbed(cfg_json, seed=0, attention="sdpa"):
    """A model whose every weight is moved away from its init, so a misplaced gain or bias shows."""
    torch.manual_seed(seed)
    m = peer.PeftlabModel(peer.Config(cfg_json), attention)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return m


def ragged_batch(cfg, seed=3):
    """Two examples, the second padded on the right, plus images when the model takes them."""
    g = torch.Generator().manual_seed(seed)
    b = {}
    if cfg.has_text:
        t = min(cfg.max_len, 5)
        tok = torch.randint(1, cfg.vocab, (2, t), generator=g)
        tok[1, 2:] = 0
        tg = torch.randint(1, cfg.vocab, (2, t), generator=g)
        tg[1, 1:] = 0
        b["tokens"], b["targets"] = tok, tg
    if cfg.has_image:
        b["images"] = torch.rand(2, cfg.image_size, cfg.image_size, cfg.channels, generator=g)
    return b


# ---------------------------------------------------------------- a float64 reference (as reference_test.go)


def ref_encode(m, tokens, image):
    """One example, in float64 loops over positions, from the model's peftlab-named weights."""
    c = m.cfg
    w = {k: v.detach().double() for k, v in m.base_params().items()}

    def linear(site, rows):
        return [w[f"/{site}/weights"].t() @ r + w[f"/{site}/biases"] for r in rows]

    def layer_norm(scope, rows):
        out = []
        for r in rows:
            mu = r.mean()
            var = ((r - mu) ** 2).mean()
            out.append((r - mu) / math.sqrt(var + 1e-5) * w[f"/{scope}/gain"] + w[f"/{scope}/offset"])
        return out

    x, kinds, pos_rows, real = [], [], [], []
    patches = 0
    if image is not None:
        p, side = c.patch_size, c.image_size // c.patch_size
        flat = []
        for py in range(side):
            for px in range(side):
                v = [float(image[py * p + yy][px * p + xx][ch]) for yy in range(p) for xx in range(p)
                     for ch in range(c.channels)]
                flat.append(torch.tensor(v, dtype=torch.float64))
        for i, e in enumerate(linear("embed/image/patch", flat)):
            x.append(e)
            kinds.append(0)
            pos_rows.append(i)
            real.append(True)
        patches = len(flat)
    if tokens is not None:
        for i, tok in enumerate(tokens.tolist()):
            x.append(w["/embed/text/embeddings"][tok].clone())
            kinds.append(1)
            pos_rows.append(c.patches + i)
            real.append(tok != 0)
    if c.positions == "learned":
        pos = w["/embed/pos/embeddings"]
    else:
        pos = peer.sinusoidal_table(0, c.num_positions, c.width).double()
    typ = w["/embed/type/embeddings"]
    x = [x[i] + pos[pos_rows[i]] + typ[kinds[i]] for i in range(len(x))]
    s = len(x)
    allowed = [[q == k or (real[k] and (k < patches or k <= q)) for k in range(s)] for q in range(s)]
    dh = c.width // c.heads
    for b in range(c.blocks):
        pre = f"block/{b}"
        h = layer_norm(f"{pre}/ln1", x)
        q, k, v = linear(f"{pre}/attn/q", h), linear(f"{pre}/attn/k", h), linear(f"{pre}/attn/v", h)
        att = [torch.zeros(c.width, dtype=torch.float64) for _ in range(s)]
        for hd in range(c.heads):
            sl = slice(hd * dh, (hd + 1) * dh)
            for i in range(s):
                logits = {j: float(q[i][sl] @ k[j][sl]) / math.sqrt(dh) for j in range(s) if allowed[i][j]}
                mx = max(logits.values())
                e = {j: math.exp(lv - mx) for j, lv in logits.items()}
                tot = sum(e.values())
                for j, ev in e.items():
                    att[i][sl] += ev / tot * v[j][sl]
        x = [a + o for a, o in zip(x, linear(f"{pre}/attn/o", att))]
        h = layer_norm(f"{pre}/ln2", x)
        up = [u * 0.5 * (1 + torch.erf(u / math.sqrt(2))) for u in linear(f"{pre}/mlp/up", h)]
        x = [a + o for a, o in zip(x, linear(f"{pre}/mlp/down", up))]
    return layer_norm("final_ln", x), real


def ref_outputs(m, batch):
    c = m.cfg
    lm, cls = [], []
    for b in range(2):
        tok = batch["tokens"][b] if "tokens" in batch else None
        img = batch["images"][b].tolist() if "images" in batch else None
        h, real = ref_encode(m, tok, img)
        if tok is not None:
            lm.append([m.lm.weights.detach().double().t() @ r + m.lm.biases.detach().double()
                       for r in h[len(h) - len(tok):]])
        if c.classes > 0:
            pooled = sum(r for r, ok in zip(h, real) if ok) / sum(real)
            cls.append(m.cls.weights.detach().double().t() @ pooled + m.cls.biases.detach().double())
    return lm, cls


def test_matches_float64_reference():
    sinus = dict(MULTI, name="tiny-mm-sin", positions="sinusoidal")
    for cj in (TEXT, IMAGE, MULTI, sinus):
        for attention in ("sdpa", "math"):
            m = perturbed(cj, attention=attention)
            batch = ragged_batch(m.cfg)
            want_lm, want_cls = ref_outputs(m, batch)
            worst = 0.0
            with torch.no_grad():
                if m.cfg.has_text:
                    got = m.lm_logits(batch["tokens"], batch.get("images"))
                    for b in range(2):
                        for p, row in enumerate(want_lm[b]):
                            if batch["tokens"][b, p] == 0:
                                continue  # outputs at padding positions are unspecified
                            worst = max(worst, (got[b, p].double() - row).abs().max().item())
                if m.cfg.classes > 0:
                    got = m.classify(batch.get("tokens"), batch.get("images"))
                    for b in range(2):
                        worst = max(worst, (got[b].double() - want_cls[b]).abs().max().item())
            assert worst < 1e-4, f"{cj['name']} ({attention}): max |diff| vs float64 reference = {worst}"


# ---------------------------------------------------------------- mask, loss, adapters


def test_prefix_lm_mask():
    # 2 image patches, then 4 text positions of which the last is padding (example 0); example 1 has
    # padding at text positions 1 and 3.
    prefix = 2
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 1, 0]], dtype=torch.bool)
    got = peer.attention_mask(mask, prefix)
    s = mask.shape[1]
    for b in range(2):
        for q in range(s):
            for k in range(s):
                want = q == k or (bool(mask[b, k]) and (k < prefix or k <= q))
                assert bool(got[b, q, k]) == want, (b, q, k)
    # Spelled out for example 0: patches see both patches only; text sees patches and earlier text.
    want0 = torch.tensor([
        [1, 1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1],  # the padding position sees only real keys and itself
    ], dtype=torch.bool)
    assert torch.equal(got[0], want0)
    assert got.diagonal(dim1=1, dim2=2).all()


def test_padding_key_does_not_change_outputs():
    m = perturbed(TEXT)
    tok = torch.tensor([[3, 7, 1, 0, 0]])
    with torch.no_grad():
        a = m.lm_logits(tok)
        b = m.lm_logits(tok[:, :3])
    assert torch.allclose(a[:, :3], b, atol=1e-5)


def test_lm_loss_definition():
    m = perturbed(TEXT)
    batch = ragged_batch(m.cfg)
    with torch.no_grad():
        logits = m.lm_logits(batch["tokens"]).double()
        loss = m.loss(batch, peer.LM).item()
    logp = torch.log_softmax(logits, -1)
    tot, n = 0.0, 0.0
    for b in range(2):
        for t in range(batch["targets"].shape[1]):
            tg = int(batch["targets"][b, t])
            if tg != 0:
                tot -= float(logp[b, t, tg])
                n += 1
    assert abs(loss - tot / n) < 1e-5
    w = torch.rand(batch["targets"].shape)
    with torch.no_grad():
        lw = m.loss(dict(batch, weights=w), peer.LM).item()
    nll = -logp.gather(-1, batch["targets"].unsqueeze(-1)).squeeze(-1)
    assert abs(lw - float((nll * w).sum() / w.sum())) < 1e-5


def test_zero_b_adapters_give_the_base_loss():
    for cj in (TEXT, MULTI):
        base = perturbed(cj, seed=1)
        batch = ragged_batch(base.cfg)
        with torch.no_grad():
            want = base.loss(batch, peer.LM)
        for kind in ("lora", "adalink"):
            m = perturbed(cj, seed=1)
            if kind == "lora":
                sites = m.add_lora(["attn/q", "attn/v", "embed/image/patch"] if m.cfg.has_image
                                   else ["attn/q", "attn/v"], rank=4, alpha=16)
                assert len(sites) == 2 * m.cfg.blocks + (1 if m.cfg.has_image else 0)
            else:
                sites = m.add_adalink(4)
                assert sites == (["input/text", "input/image"] if m.cfg.has_image else ["input/text"])
            with torch.no_grad():
                got = m.loss(batch, peer.LM)
            assert torch.equal(got, want), f"{cj['name']} {kind}: {got.item()} != {want.item()}"
            # ... and a non-zero B changes it.
            with torch.no_grad():
                for n, p in m.adapter_names.items():
                    if n.endswith("B"):
                        p.normal_()
                assert m.loss(batch, peer.LM).item() != want.item()


def test_lora_training_touches_only_the_adapter():
    spec = peer.normalize({"model": TEXT, "row": "lora", "rank": 2})
    torch.manual_seed(0)
    m, trainable = peer.build(spec, peer.Config(TEXT))
    before = {n: p.detach().clone() for n, p in m.base_params().items()}
    opt = torch.optim.AdamW(trainable, lr=1e-2, eps=peer.ADAM_EPS, weight_decay=0.1)
    batch = ragged_batch(m.cfg)
    for _ in range(3):
        opt.zero_grad(set_to_none=True)
        m.loss(batch, peer.LM).backward()
        opt.step()
    for n, p in m.base_params().items():
        assert torch.equal(p, before[n]), n
        assert p.grad is None, n
    assert all(p.abs().sum() > 0 for n, p in m.adapter_names.items() if n.endswith("lora_B"))
    assert sum(p.numel() for p in trainable) == TEXT["blocks"] * 2 * 2 * (16 + 16)


def test_site_selection():
    c = peer.Config(MULTI)
    assert peer.select_sites(c, ["attn/q", "attn/v"]) == ["block/0/attn/q", "block/0/attn/v", "block/1/attn/q",
                                                            "block/1/attn/v"]
    assert peer.select_sites(c, ["block/*/attn/{q,v}"]) == peer.select_sites(c, ["attn/q", "attn/v"])
    assert peer.select_sites(c, ["block/1/**"]) == [f"block/1/{n}" for n in peer.BLOCK_LINEARS]
    assert peer.select_sites(c, ["head/lm"]) == ["head/lm"]
    assert "head/lm" not in peer.select_sites(c, ["all-linear"])
    assert "embed/image/patch" in peer.select_sites(c, ["all-linear"])
    for bad in (["attn/x"], ["input/text"], []):
        try:
            peer.select_sites(c, bad)
        except peer.SpecError:
            continue
        raise AssertionError(f"{bad} should be rejected")


def test_names_match_layout():
    # model.Config.Layout() for MULTI, written out by hand from layout.go.
    m = peer.PeftlabModel(peer.Config(MULTI))
    names = list(m.base_params())
    want = ["/embed/text/embeddings", "/embed/image/patch/weights", "/embed/image/patch/biases",
            "/embed/pos/embeddings", "/embed/type/embeddings"]
    for i in range(2):
        want += [f"/block/{i}/ln1/gain", f"/block/{i}/ln1/offset"]
        for s in peer.BLOCK_LINEARS:
            if s == "mlp/up":
                want += [f"/block/{i}/ln2/gain", f"/block/{i}/ln2/offset"]
            want += [f"/block/{i}/{s}/weights", f"/block/{i}/{s}/biases"]
    want += ["/final_ln/gain", "/final_ln/offset", "/head/cls/weights", "/head/cls/biases", "/head/lm/weights",
             "/head/lm/biases"]
    assert names == want
    shapes = {n: list(p.shape) for n, p in m.base_params().items()}
    assert shapes["/embed/pos/embeddings"] == [4 + 6, 12]  # patches first, then max_len
    assert shapes["/embed/image/patch/weights"] == [3 * 3 * 2, 12]
    assert shapes["/block/0/mlp/up/weights"] == [12, 16]
    assert shapes["/head/lm/weights"] == [12, 19]
    # Every parameter of the module is a named base weight: nothing is counted that the Go side lacks.
    assert sum(p.numel() for p in m.parameters()) == sum(p.numel() for p in m.base_params().values())


# ---------------------------------------------------------------- check mode, through the CLI


def run_peer(spec, env=None):
    e = dict(os.environ, OMP_NUM_THREADS="1")
    e.update(env or {})
    p = subprocess.run([sys.executable, os.path.join(HERE, "peer.py"), "--spec", json.dumps(spec)],
                       capture_output=True, text=True, env=e, timeout=300)
    return p


def write_check(tmp, m, batch, extra=None, drop=None):
    weights = {n: p.detach() for n, p in m.base_params().items()}
    if drop:
        del weights[drop]
    weights.update(extra or {})
    wpath, bpath = os.path.join(tmp, "w.safetensors"), os.path.join(tmp, "b.safetensors")
    peer.save_safetensors(wpath, weights, {"format": "pt"})
    peer.save_safetensors(bpath, {k: (v.to(torch.int32) if v.dtype == torch.int64 else v) for k, v in batch.items()})
    return {"weights": wpath, "batch": bpath}


def test_safetensors_round_trip_in_process():
    m = perturbed(MULTI, seed=7)
    batch = ragged_batch(m.cfg)
    with torch.no_grad():
        want = m.loss(batch, peer.LM)
    with tempfile.TemporaryDirectory() as tmp:
        check = write_check(tmp, m, batch)
        torch.manual_seed(123)
        fresh = peer.PeftlabModel(peer.Config(MULTI))
        peer.load_weights(fresh, peer.load_safetensors(check["weights"]))
        b2, objective = peer.load_batch(fresh.cfg, peer.load_safetensors(check["batch"]))
        assert objective == peer.LM
        for k in batch:
            assert torch.equal(batch[k], b2[k]), k
        with torch.no_grad():
            got = fresh.loss(b2, objective)
    assert torch.equal(got, want), (got.item(), want.item())


def test_check_mode_cli():
    m = perturbed(TEXT, seed=5)
    batch = ragged_batch(m.cfg)
    with torch.no_grad():
        want = m.loss(batch, peer.LM).item()
    with tempfile.TemporaryDirectory() as tmp:
        check = write_check(tmp, m, batch, extra={"/#rngState": torch.zeros(3, dtype=torch.int64)})
        for row in ("forward", "ft", "lora", "adalink"):
            p = run_peer({"model": TEXT, "row": row, "steps": 1, "warmup": 0, "threads": 1, "check": check})
            assert p.returncode == 0, p.stderr
            lines = p.stdout.strip().splitlines()
            assert len(lines) == 1, p.stdout
            out = json.loads(lines[0])
            assert abs(out["check_loss"] - want) < 1e-5 * max(1, abs(want)), (row, out["check_loss"], want)
            assert abs(out["loss"] - want) < 1e-5 * max(1, abs(want)), (row, out["loss"], want)
        # steps 0: just the check
        p = run_peer({"model": TEXT, "row": "forward", "steps": 0, "warmup": 0, "check": check})
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        assert out["median_ms"] is None and abs(out["check_loss"] - want) < 1e-5

        # An unknown weight name and a missing one are errors, with nothing on stdout.
        bad = write_check(tmp, m, batch, extra={"/block/0/attn/z/weights": torch.zeros(2)})
        p = run_peer({"model": TEXT, "row": "forward", "steps": 0, "check": bad})
        assert p.returncode == 1 and p.stdout == "" and "/block/0/attn/z/weights" in p.stderr, p.stderr
        bad = write_check(tmp, m, batch, drop="/block/1/ln2/gain")
        p = run_peer({"model": TEXT, "row": "forward", "steps": 0, "check": bad})
        assert p.returncode == 1 and p.stdout == "" and "missing: /block/1/ln2/gain" in p.stderr, p.stderr


def test_check_with_adapter_weights():
    m = perturbed(TEXT, seed=9)
    m.add_lora(["attn/q", "attn/v"], rank=2, alpha=4)
    with torch.no_grad():
        for p in m.adapter_names.values():
            p.normal_()
    batch = ragged_batch(m.cfg)
    with torch.no_grad():
        want = m.loss(batch, peer.LM).item()
    extra = {n.replace("/adapters/lora/", "/adapters/mine/"): p.detach() for n, p in m.adapter_names.items()}
    with tempfile.TemporaryDirectory() as tmp:
        check = write_check(tmp, m, batch, extra=extra)
        p = run_peer({"model": TEXT, "row": "lora", "rank": 2, "lora_alpha": 4, "steps": 0, "check": check})
        assert p.returncode == 0, p.stderr
        assert abs(json.loads(p.stdout)["check_loss"] - want) < 1e-5


def test_output_contract():
    keys = {"row", "model", "median_ms", "min_ms", "max_ms", "steps", "tokens_per_s", "gflops", "peak_rss_bytes",
            "torch", "threads", "trainable_params", "total_params", "loss"}
    for spec in ({"model": MULTI, "row": "ft", "batch": 2, "seq": 4},
                 {"model": IMAGE, "row": "adalink", "batch": 2, "rank": 2},
                 {"model": TEXT, "row": "lora", "batch": 2, "seq": 9, "lora_targets": ["all-linear"]},
                 {"model": TEXT, "row": "forward", "batch": 2, "seq": 3},
                 {"row": "matmul", "matmul_n": 64}):
        spec = dict(spec, steps=2, warmup=1, threads=1)
        p = run_peer(spec)
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        assert keys <= set(out), keys - set(out)
        assert out["row"] == spec["row"] and out["steps"] == 2 and out["threads"] == 1
        assert 0 < out["min_ms"] <= out["median_ms"] <= out["max_ms"]
        assert out["peak_rss_bytes"] > 0
        if spec["row"] == "matmul":
            assert out["gflops"] > 0 and out["loss"] is None
        else:
            assert out["gflops"] is None and out["tokens_per_s"] > 0 and math.isfinite(out["loss"])
            assert 0 <= out["trainable_params"] <= out["total_params"]
    p = run_peer({"model": TEXT, "row": "lora", "seq": 10})  # seq > max_len
    assert p.returncode == 1 and p.stdout == "" and "max_len" in p.stderr


def _main():
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            print(f"FAIL {name}: {e}")
            failed += 1
        else:
            print(f"ok   {name}")
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(_main())
