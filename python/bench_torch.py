"""PyTorch CPU baseline for `lab bench`: the same model, input and recipe,
so lab's numbers have a yardstick on the same machine.

    python3 python/bench_torch.py [--threads 2] [--batch 64] [--steps N] [--json]
                                  [--config MODEL_JSON] [--image-size 64]

--config takes the model keys as lab writes them (`lab.model`): `lab bench
--spec FILE --torch` passes its spec's, so both time the same network
(python/lab_model.py builds it).
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lab_model import LabNet, soft_cross_entropy  # noqa: E402

IMAGE = 64  # set from --image-size
CLASSES = 6
INFERENCE_BATCH = 64
GRADCAM_BATCH = 64


def batch(n, generator):
    # channels_last is PyTorch's fast CPU conv path (oneDNN) and matches lab's NHWC.
    x = torch.randn(n, 3, IMAGE, IMAGE, generator=generator)
    x = x.to(memory_format=torch.channels_last)
    t = torch.rand(n, CLASSES, generator=generator) + 0.05
    return x, t / t.sum(1, keepdim=True)


def timed(fn, warmup, steps):
    """Per-iteration wall times. Callers take the median: on a shared VM a
    neighbour's burst can halve a mean, while the median stays put."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def bench_train(model, x, t, steps):
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        soft_cross_entropy(model(x), t).backward()
        opt.step()

    times = timed(step, warmup=2, steps=steps)
    return x.shape[0] / statistics.median(times)


def bench_inference(model, x, steps):
    model.eval()
    with torch.no_grad():
        times = timed(lambda: model(x), warmup=2, steps=steps)
    return x.shape[0] / statistics.median(times)


def bench_latency(model, x1, steps):
    model.eval()
    with torch.no_grad():
        times = timed(lambda: model(x1), warmup=5, steps=steps)
    return 1000.0 * statistics.median(times)


def gradcam(model, x):
    """Grad-CAM on the last block's output (after its final activation: what
    the classifier head sees; lab's bench explains the same layer)."""
    captured = {}
    last = getattr(model, f"block{model.n_blocks}")
    handle = last.register_forward_hook(lambda m, i, out: captured.__setitem__("a", out))
    try:
        logits = model(x)
    finally:
        handle.remove()
    a = captured["a"]
    score = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
    # Gradient only down to the activation: Grad-CAM needs nothing below it,
    # and a full backward would time parameter gradients nobody uses.
    (grad,) = torch.autograd.grad(score, a)
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * a).sum(dim=1, keepdim=True))
    return F.interpolate(cam, size=(IMAGE, IMAGE), mode="bilinear", align_corners=False)


def bench_gradcam(model, x, steps):
    model.eval()
    times = timed(lambda: gradcam(model, x), warmup=1, steps=steps)
    return 1000.0 * statistics.median(times) / x.shape[0]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64, help="training batch size")
    p.add_argument("--steps", type=int, default=20,
                   help="timed iterations per measurement (latency uses 10x)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--config", default="{}", help="model keys as JSON (lab.model); default: the baseline")
    p.add_argument("--image-size", type=int, default=64)
    args = p.parse_args()
    if args.threads < 1 or args.batch < 1 or args.steps < 1 or args.image_size < 4:
        p.error("--threads, --batch and --steps must be positive, --image-size at least 4")
    global IMAGE
    IMAGE = args.image_size

    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    try:
        model = LabNet(json.loads(args.config)).to(memory_format=torch.channels_last)
    except (ValueError, TypeError) as e:
        p.error(f"--config: {e}")

    x_train, t_train = batch(args.batch, g)
    x_inf, _ = batch(INFERENCE_BATCH, g)
    x_one, _ = batch(1, g)
    x_cam, _ = batch(GRADCAM_BATCH, g)

    result = {
        "torch_version": torch.__version__,
        "threads": args.threads,
        "batch": args.batch,
        "train_images_per_second": bench_train(model, x_train, t_train, args.steps),
        "inference_images_per_second": bench_inference(model, x_inf, args.steps),
        "latency_ms": bench_latency(model, x_one, 10 * args.steps),
        "gradcam_ms_per_image": bench_gradcam(model, x_cam, args.steps),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"torch {result['torch_version']}, {args.threads} threads, "
              f"train batch {args.batch}, {IMAGE}x{IMAGE}x3, channels_last")
        print(f"training    {result['train_images_per_second']:9.1f} images/s")
        print(f"inference   {result['inference_images_per_second']:9.1f} images/s (batch {INFERENCE_BATCH})")
        print(f"latency     {result['latency_ms']:9.2f} ms (batch 1, median)")
        print(f"grad-cam    {result['gradcam_ms_per_image']:9.2f} ms/image (batch {GRADCAM_BATCH})")


if __name__ == "__main__":
    main()
