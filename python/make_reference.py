"""Writes the PyTorch reference fixtures the Swift Engine tests compare against.

    python3 python/make_reference.py [NAME ...]    (default: every fixture)

Small networks (8x8 images, widths [4, 8, 8]) for each model key
(the README's model section) and some combinations of them, batch norm +
skip and neither, so every layer's conv-bias and batch-norm paths and every
block ending are pinned down; and the baseline at widths [16, 32, 64] on
64 images of 24x24 (reference_wide.safetensors), large enough that lab
takes every fast path its training and eval use: Winograd F(4x4) (24 and 12
pixels) and F(2x2) (6 pixels, at 64 channels also the weight gradient) in
forward, input and weight gradients, smallGemm (block1.conv1's K = 27), the
eval batch-norm fold into cached kernels, batch norm's vector slabs at 16,
32 and 64 channels, and work split across two workers. Every number comes
from one seeded numpy stream, never from torch's initializers, so the
fixtures do not change when PyTorch changes its default init.
"""

import copy
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab_model  # noqa: E402
from lab_model import LabNet, read_safetensors, soft_cross_entropy, write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "Tests", "EngineTests", "Fixtures")

SEED = 1234
C = 3
SMALL = {"widths": [4, 8, 8], "convs_per_block": [2, 2, 3], "hidden": 8,
         "dropout": 0.0, "classes": 6}
WIDE = {"widths": [16, 32, 64], "convs_per_block": [2, 2, 3], "hidden": 16,
        "dropout": 0.0, "classes": 6, "batch_norm": True, "skip": True}
BN_SKIP = {"batch_norm": True, "skip": True}
# (file, config, images N, side H = W)
VARIANTS = [
    ("reference_bn_skip.safetensors", dict(SMALL, **BN_SKIP), 3, 8),
    ("reference_nobn_noskip.safetensors", dict(SMALL, batch_norm=False, skip=False), 3, 8),
    ("reference_wide.safetensors", WIDE, 64, 24, {"clear_of_kinks": True, "distinct_images": 2, "two_step_state": False}),
    # One key each.
    ("reference_se.safetensors", dict(SMALL, **BN_SKIP, attention="se", attention_reduction=2), 3, 8),
    ("reference_cbam.safetensors", dict(SMALL, **BN_SKIP, attention="cbam", attention_reduction=2), 3, 8),
    ("reference_separable.safetensors", dict(SMALL, **BN_SKIP, conv="separable"), 3, 8),
    ("reference_projection.safetensors", dict(SMALL, **BN_SKIP, shortcut="projection", convs_per_block=[1, 2, 3]), 3, 8),
    ("reference_kernel5.safetensors", dict(SMALL, **BN_SKIP, kernel=5), 3, 8),
    ("reference_avg_pool.safetensors", dict(SMALL, **BN_SKIP, pool="avg"), 3, 8),
    ("reference_leaky_relu.safetensors", dict(SMALL, **BN_SKIP, activation="leaky_relu"), 3, 8),
    ("reference_elu.safetensors", dict(SMALL, **BN_SKIP, activation="elu"), 3, 8),
    ("reference_silu.safetensors", dict(SMALL, **BN_SKIP, activation="silu"), 3, 8),
    ("reference_no_hidden.safetensors", dict(SMALL, **BN_SKIP, hidden=0, dropout=0.0), 3, 8),
    # Combinations: the activation after attention and a projection, one-conv
    # blocks with attention; and without batch norm, every bias in its place.
    ("reference_se_silu_projection.safetensors",
     dict(SMALL, **BN_SKIP, attention="se", activation="silu", shortcut="projection", convs_per_block=[1, 2, 3]), 3, 8),
    ("reference_cbam_separable_kernel5.safetensors",
     dict(SMALL, **BN_SKIP, attention="cbam", attention_reduction=4, conv="separable", kernel=5, activation="elu",
          pool="avg", hidden=0, convs_per_block=[2, 1, 3]), 3, 8),
    ("reference_nobn_cbam_projection.safetensors",
     dict(SMALL, batch_norm=False, skip=True, attention="cbam", attention_reduction=2, shortcut="projection",
          conv="separable", activation="leaky_relu"), 3, 8),
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


class _Watch:
    """torch.nn.functional with relu and max_pool2d recording how close the
    network comes to their kinks: each ReLU input's smallest |z| and each 2x2
    window's gap between its largest two values, relative to the layer's
    largest |value|."""

    def __init__(self):
        self.margin = float("inf")

    def __getattr__(self, name):
        return getattr(torch.nn.functional, name)

    def relu(self, z):
        self.margin = min(self.margin, (z.abs().min() / z.abs().max().clamp_min(1e-30)).item())
        return torch.nn.functional.relu(z)

    def max_pool2d(self, x, kernel, stride=None, *args, **kwargs):
        n, c, h, w = x.shape
        if kernel == 2 and h % 2 == 0 and w % 2 == 0:
            win = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
            top2 = win.topk(2, dim=-1).values
            gap = (top2[..., 0] - top2[..., 1])[top2[..., 0] > 0]   # ties at zero are masked by the ReLU before
            if gap.numel():
                self.margin = min(self.margin, (gap.min() / x.abs().max().clamp_min(1e-30)).item())
        return torch.nn.functional.max_pool2d(x, kernel, stride, *args, **kwargs)


def kink_margin(model, x_nhwc):
    """The closest float64 forward (train and eval) comes to a ReLU's kink
    or a max-pool tie. Near one, float32 rounding in either engine decides
    which side a value falls on, and one flipped element moves a gradient by
    far more than rounding: a fixture at batch 64 must stay clear of them."""
    watch, saved = _Watch(), lab_model.F
    lab_model.F = watch
    try:
        twin = LabNet(model.config)
    finally:
        lab_model.F = saved
    twin.load_state_dict(model.state_dict())
    twin = twin.double()
    x = nhwc_to_nchw(torch.from_numpy(x_nhwc.astype(np.float64)))
    saved = lab_model.F
    lab_model.F = watch
    try:
        with torch.no_grad():
            twin.train()(x)
            twin.eval()(x)
    finally:
        lab_model.F = saved
    return watch.margin


def calibrate_running_statistics(model, x_nhwc):
    """Running statistics set to the input's batch statistics (a forward in
    train mode with momentum 1), so eval normalizes as training does instead
    of blowing activations up through the layers."""
    probe = copy.deepcopy(model).double().train()
    for m in probe.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 1.0
    with torch.no_grad():
        probe(nhwc_to_nchw(torch.from_numpy(x_nhwc.astype(np.float64))))
    state = model.state_dict()
    for name, v in probe.state_dict().items():
        if name.endswith(("running_mean", "running_var")):
            state[name] = v.float()
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


def distinct(per_image, k):
    """The first k images' rows, after checking every later image repeats
    them (to float32 rounding: batch sums add in a different order)."""
    n = per_image.shape[0]
    scale = np.abs(per_image).max()
    err = np.abs(per_image - per_image[:k][np.arange(n) % k]).max() / scale
    assert err <= 1e-6, f"repeated images differ by {err:.2e} of the largest value"
    return per_image[:k]


def make_fixture(filename, config, N, H, options=None):
    """options: distinct_images k: the batch is k images repeated in turn
    (image n is image n mod k, with its target), so the kernels see N images while the network
    makes only k images' worth of ReLU and max-pool decisions;
    clear_of_kinks: running statistics calibrated, and the first seed from
    SEED on whose float64 forward stays 5e-6 of a layer's largest value away
    from every ReLU kink and max-pool tie (kink_margin; float32 rounding in
    lab's fast paths is below 4e-6 of it). At 64 images of 24x24 with random
    data a few of two million decisions fall within rounding of their kink
    whatever the seed, and each flipped one moves the gradients below it by
    up to 1%: nothing a tolerance could tell from a bug. With distinct
    images the input and its gradients are stored for the k images only
    (metadata `repeat`: N; image n is stored image n mod k), and
    two_step_state False leaves out the state after the second AdamW step
    (its losses stay): what keeps the wide fixture under 2 MB."""
    options = options or {}
    W = H
    for seed in range(SEED, SEED + 500):
        rng = np.random.RandomState(seed)
        base = LabNet(config)
        init_state(base, rng)
        k = options.get("distinct_images", N)
        x_nhwc = f32(rng.standard_normal((k, H, W, C)))[np.arange(N) % k]
        t = f32(rng.random_sample((k, config["classes"])) + 0.05)[np.arange(N) % k]
        t /= t.sum(axis=1, keepdims=True)
        if not options.get("clear_of_kinks"):
            break
        calibrate_running_statistics(base, x_nhwc)
        margin = kink_margin(base, x_nhwc)
        if margin > 5e-6:
            break
    else:
        raise RuntimeError(f"{filename}: no seed in 500 keeps the forward clear of kinks")
    target = torch.from_numpy(t)

    out = {}
    for name, v in base.state_dict().items():
        out[name] = v.numpy().copy()
    k = options.get("distinct_images", N)
    out["input"] = x_nhwc[:k]
    out["target"] = t

    bn_names = [n for n, m in base.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]

    # Train mode: batch statistics in the forward, running stats updated once.
    model = copy.deepcopy(base).train()
    logits, loss, gx = forward_backward(model, x_nhwc, target)
    out["train.logits"] = np32(logits)
    out["train.loss"] = np32(loss).reshape(1)
    for name, p in model.named_parameters():
        out[f"train.grad.{name}"] = np32(p.grad)
    out["train.grad.input"] = distinct(np32(gx), k)
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
    out["eval.grad.input"] = distinct(np32(gx), k)

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
        if step == 1:
            # The state after one step: the update of the gradients checked
            # above (a second step starts from weights no fixture keeps
            # clear of kinks).
            for name, v in model.state_dict().items():
                if v.is_floating_point():
                    out[f"adamw.step1.{name}"] = np32(v)
    if options.get("two_step_state", True):
        for name, v in model.state_dict().items():
            if v.is_floating_point():
                out[f"adamw.{name}"] = np32(v)

    metadata = {"config": json.dumps(config, sort_keys=True),
                "generator": f"torch {torch.__version__}"}
    if k != N:
        metadata["repeat"] = str(N)
    if seed != SEED:
        metadata["seed"] = str(seed)
    if options.get("clear_of_kinks"):
        metadata["kink_margin"] = f"{margin:.2e}"
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
    wanted = set(sys.argv[1:])
    unknown = wanted - {f for f, *_ in VARIANTS}
    if unknown:
        sys.exit(f"no fixture named {', '.join(sorted(unknown))}")
    for filename, config, n, h, *options in VARIANTS:
        if wanted and filename not in wanted:
            continue
        path, out, meta = make_fixture(filename, config, n, h, *options)
        tensors = verify(path, out, meta)
        size = os.path.getsize(path)
        print(f"{os.path.relpath(path, ROOT)}: {len(tensors)} tensors, {size} bytes, "
              f"train.loss {tensors['train.loss'][0]:.6f}, eval.loss {tensors['eval.loss'][0]:.6f}, "
              f"adamw.loss1/2 {tensors['adamw.loss1'][0]:.6f}/{tensors['adamw.loss2'][0]:.6f}")
    print(f"generator: torch {torch.__version__}, seed {SEED}")


if __name__ == "__main__":
    main()
