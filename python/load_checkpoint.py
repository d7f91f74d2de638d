"""Shows that a checkpoint written by lab loads in PyTorch unchanged.

    python3 python/load_checkpoint.py CHECKPOINT.safetensors [--compare INPUTS.safetensors]

Exit 0 after a strict load and an eval forward; exit 1 with one line on any
mismatch, so it can run as a check in scripts and CI. With --compare, a
safetensors file holding `input` [N, H, W, 3] (NHWC, as lab feeds it) and
`logits` [N, classes] (lab's eval logits for it): PyTorch's logits must
match within 1e-4 of their scale and pick the same class for every image;
the agreement is printed.
"""

import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lab_model import DEFAULT_CONFIG, LabNet, SafetensorsError, read_safetensors  # noqa: E402


class CheckpointError(Exception):
    pass


def one_line(text):
    return " ".join(str(text).split())


def model_config(metadata):
    if "lab.model" not in metadata:
        raise CheckpointError("metadata has no 'lab.model' key (model config)")
    try:
        config = json.loads(metadata["lab.model"])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"metadata 'lab.model' is not JSON ({e})") from None
    if not isinstance(config, dict):
        raise CheckpointError("metadata 'lab.model' is not a JSON object")
    # The resolved spec's model section may grow keys that do not change the
    # architecture; the strict state_dict load below still catches any real
    # mismatch.
    ignored = sorted(set(config) - set(DEFAULT_CONFIG))
    if ignored:
        print(f"note: ignoring model keys {', '.join(ignored)}", file=sys.stderr)
    return {k: v for k, v in config.items() if k in DEFAULT_CONFIG}


def image_size(metadata):
    raw = metadata.get("lab.image_size")
    if raw is None:
        return 64
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise CheckpointError(f"metadata 'lab.image_size' is not a number: {raw!r}") from None
    if isinstance(value, list) and value:
        value = value[0]
    if not isinstance(value, int) or value < 4:
        raise CheckpointError(f"metadata 'lab.image_size' is not a usable size: {raw!r}")
    return value


def to_torch(name, array):
    if name.endswith("num_batches_tracked"):
        # PyTorch keeps this counter as int64; accept a float or int32 writer.
        return torch.from_numpy(np.asarray(array).astype(np.int64))
    if array.dtype != np.float32:
        raise CheckpointError(f"tensor '{name}' is {array.dtype}, expected float32")
    return torch.from_numpy(array)


def load(path):
    tensors, metadata = read_safetensors(path)
    config = model_config(metadata)
    try:
        model = LabNet(config)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"metadata 'lab.model': {e}") from None
    state = {k: to_torch(k, v) for k, v in tensors.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(e) from None
    model.eval()
    size = image_size(metadata)
    with torch.no_grad():
        logits = model(torch.randn(2, 3, size, size))
    if not torch.isfinite(logits).all():
        raise CheckpointError("eval forward produced non-finite logits")
    params = sum(p.numel() for p in model.parameters())
    return len(tensors), params, tuple(logits.shape)


def compare(path, inputs_path):
    """PyTorch's eval logits for lab's inputs against lab's: (max |diff| /
    scale, fraction of images with the same predicted class)."""
    tensors, metadata = read_safetensors(path)
    model = LabNet(model_config(metadata))
    model.load_state_dict({k: to_torch(k, v) for k, v in tensors.items()}, strict=True)
    model.eval()
    data, _ = read_safetensors(inputs_path)
    if "input" not in data or "logits" not in data:
        raise CheckpointError(f"{inputs_path} needs tensors 'input' and 'logits'")
    with torch.no_grad():
        logits = model(torch.from_numpy(data["input"]).permute(0, 3, 1, 2)).numpy()
    lab = data["logits"]
    if logits.shape != lab.shape:
        raise CheckpointError(f"logits shape {logits.shape}, lab's {lab.shape}")
    diff = float(np.abs(logits - lab).max() / max(1e-3, np.abs(lab).max()))
    agree = float((logits.argmax(1) == lab.argmax(1)).mean())
    return diff, agree


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--compare"):
        print("usage: load_checkpoint.py CHECKPOINT.safetensors [--compare INPUTS.safetensors]", file=sys.stderr)
        return 2
    path = argv[1]
    try:
        n, params, shape = load(path)
        if len(argv) == 4:
            diff, agree = compare(path, argv[3])
    except SafetensorsError as e:
        print(one_line(e), file=sys.stderr)  # already names the file
        return 1
    except (OSError, CheckpointError) as e:
        print(f"{path}: {one_line(e)}", file=sys.stderr)
        return 1
    print(f"loaded {n} tensors, {params} parameters, logits shape {shape}")
    if len(argv) == 4:
        print(f"PyTorch against lab: max |logit diff| {diff:.2e} of their scale, same class for {100 * agree:.1f}% of images")
        if diff > 1e-4 or agree < 1:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
