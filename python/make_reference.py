"""Writes the PyTorch reference fixtures the Swift Engine tests compare against.

    python3 python/make_reference.py

Two small networks (batch norm + skip, and neither) so both conv-bias and
batch-norm paths, and both block endings, are pinned down. Every number
comes from one seeded numpy stream, never from torch's initializers, so the
fixtures do not change when PyTorch changes its default init.
"""

import copy
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lab_model import LabNet, read_safetensors, soft_cross_entropy, write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "Tests", "EngineTests", "Fixtures")

SEED = 1234
N, H, W, C = 3, 8, 8, 3
SMALL = {"widths": [4, 8, 8], "convs_per_block": [2, 2, 3], "hidden": 8,
         "dropout": 0.0, "classes": 6}
VARIANTS = [
    ("reference_bn_skip.safetensors", {"batch_norm": True, "skip": True}),
    ("reference_nobn_noskip.safetensors", {"batch_norm": False, "skip": False}),
]
ADAMW = dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)


def f32(rng_values):
    return np.asarray(rng_values, dtype=np.float32)


def init_state(model, rng):
    """Every entry set from rng in state_dict order, so the Swift side can
    load the same numbers from the fixture rather than re-deriving them."""
    state = {}
    for name, t in model.state_dict().items():
        leaf = name.rsplit(".", 1)[1]
        is_bn = ".bn" in name
        shape = tuple(t.shape)
        if leaf == "num_batches_tracked":
            v = np.zeros(shape, dtype=np.int64)
        elif leaf == "running_mean":
            v = f32(0.1 * rng.standard_normal(shape))
        elif leaf == "running_var":
            # Kept away from zero: a tiny variance would amplify rounding
            # differences between engines past any sensible tolerance.
            v = f32(0.5 + rng.random_sample(shape))
        elif is_bn and leaf == "weight":
            v = f32(1.0 + 0.2 * rng.standard_normal(shape))
        elif is_bn and leaf == "bias":
            v = f32(0.1 * rng.standard_normal(shape))
        elif leaf == "weight":
            v = f32(0.3 * rng.standard_normal(shape))
        elif leaf == "bias":
            v = f32(0.1 * rng.standard_normal(shape))
        else:
            raise RuntimeError(f"no init rule for {name}")
        state[name] = torch.from_numpy(v)
    model.load_state_dict(state, strict=True)


def nhwc_to_nchw(x):
    return x.permute(0, 3, 1, 2)


def forward_backward(model, x_nhwc, target):
    """One forward + backward; the input is a leaf in NHWC so its gradient
    comes out in lab's layout directly."""
    x = torch.from_numpy(x_nhwc.copy()).requires_grad_(True)
    model.zero_grad(set_to_none=True)
    logits = model(nhwc_to_nchw(x))
    loss = soft_cross_entropy(logits, target)
    loss.backward()
    return logits.detach(), loss.detach(), x.grad.detach()


def np32(t):
    return t.detach().cpu().numpy().astype(np.float32, copy=True)


def make_fixture(filename, flags):
    rng = np.random.RandomState(SEED)
    config = dict(SMALL, **flags)
    base = LabNet(config)
    init_state(base, rng)
    x_nhwc = f32(rng.standard_normal((N, H, W, C)))
    t = f32(rng.random_sample((N, config["classes"])) + 0.05)
    t /= t.sum(axis=1, keepdims=True)
    target = torch.from_numpy(t)

    out = {}
    for name, v in base.state_dict().items():
        out[name] = v.numpy().copy()
    out["input"] = x_nhwc
    out["target"] = t

    bn_names = [n for n, m in base.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]

    # Train mode: batch statistics in the forward, running stats updated once.
    model = copy.deepcopy(base).train()
    logits, loss, gx = forward_backward(model, x_nhwc, target)
    out["train.logits"] = np32(logits)
    out["train.loss"] = np32(loss).reshape(1)
    for name, p in model.named_parameters():
        out[f"train.grad.{name}"] = np32(p.grad)
    out["train.grad.input"] = np32(gx)
    for bn in bn_names:
        m = model.get_submodule(bn)
        out[f"train.running.{bn}.running_mean"] = np32(m.running_mean)
        out[f"train.running.{bn}.running_var"] = np32(m.running_var)

    # Eval mode: running statistics, nothing updated.
    model = copy.deepcopy(base).eval()
    logits, loss, gx = forward_backward(model, x_nhwc, target)
    out["eval.logits"] = np32(logits)
    out["eval.loss"] = np32(loss).reshape(1)
    for name, p in model.named_parameters():
        out[f"eval.grad.{name}"] = np32(p.grad)
    out["eval.grad.input"] = np32(gx)

    # AdamW: decoupled decay, so it also checks decay is not folded into the
    # gradient (which Adam with L2 would do).
    model = copy.deepcopy(base).train()
    opt = torch.optim.AdamW(model.parameters(), **ADAMW)
    x = nhwc_to_nchw(torch.from_numpy(x_nhwc.copy()))
    for step in (1, 2):
        opt.zero_grad(set_to_none=True)
        loss = soft_cross_entropy(model(x), target)
        loss.backward()
        opt.step()
        out[f"adamw.loss{step}"] = np32(loss).reshape(1)
    for name, v in model.state_dict().items():
        if v.is_floating_point():
            out[f"adamw.{name}"] = np32(v)

    metadata = {"config": json.dumps(config, sort_keys=True),
                "generator": f"torch {torch.__version__}"}
    path = os.path.join(OUT_DIR, filename)
    write_safetensors(path, out, metadata)
    return path, out, metadata


def verify(path, expected, metadata):
    tensors, meta = read_safetensors(path)
    assert meta == metadata, (meta, metadata)
    assert sorted(tensors) == sorted(expected), set(tensors) ^ set(expected)
    for name, v in expected.items():
        got = tensors[name]
        assert got.dtype == v.dtype and got.shape == v.shape, name
        assert np.array_equal(got, v), name
        if got.dtype.kind == "f":
            assert np.isfinite(got).all(), f"{name} has non-finite values"
    return tensors


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)
    os.makedirs(OUT_DIR, exist_ok=True)
    for filename, flags in VARIANTS:
        path, out, meta = make_fixture(filename, flags)
        tensors = verify(path, out, meta)
        size = os.path.getsize(path)
        print(f"{os.path.relpath(path, ROOT)}: {len(tensors)} tensors, {size} bytes, "
              f"train.loss {tensors['train.loss'][0]:.6f}, eval.loss {tensors['eval.loss'][0]:.6f}, "
              f"adamw.loss1/2 {tensors['adamw.loss1'][0]:.6f}/{tensors['adamw.loss2'][0]:.6f}")
    print(f"generator: torch {torch.__version__}, seed {SEED}")


if __name__ == "__main__":
    main()
