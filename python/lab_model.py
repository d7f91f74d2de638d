"""PyTorch twin of lab's CNN (the README's model section) plus a
dependency-free safetensors reader/writer.

The module and parameter names are the checkpoint format: lab writes its
weights under exactly these state_dict names and layouts, so a checkpoint
from lab loads here with strict=True and the reference fixtures produced
here can be compared name by name in the Swift tests. `LabNet(config)`
builds any network a `lab.model` JSON describes (every key of the spec's
`model` section, by its spec name; absent keys take today's defaults).

The block (ModelConfig.swift), k convolutions:

    h1  = act(bn1(conv1(x)))
    h   = act(bn_i(conv_i(h)))     for 1 < i < k
    y   = bn_k(conv_k(h))          (k = 1: y = bn1(conv1(x)))
    y   = attention(y)
    out = act(y + s)               s = h1 (skip, inner; k >= 2) | bn(conv1x1(x)) (skip, projection) | nothing
"""

import json
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_CONFIG = {
    "widths": [32, 64, 128],
    "convs_per_block": [2, 2, 3],
    "skip": True,
    "batch_norm": True,
    "hidden": 64,
    "dropout": 0.5,
    "classes": 6,
    "activation": "relu",
    "pool": "max",
    "kernel": 3,
    "conv": "standard",
    "shortcut": "inner",
    "attention": "none",
    "attention_reduction": 16,
}

CHOICES = {
    "activation": ["relu", "leaky_relu", "elu", "silu"],
    "pool": ["max", "avg"],
    "kernel": [3, 5],
    "conv": ["standard", "separable"],
    "shortcut": ["inner", "projection"],
    "attention": ["none", "se", "cbam"],
}

IN_CHANNELS = 3


def resolve_config(config=None):
    """Defaults filled in; unknown keys and values rejected so a typo cannot
    silently build a different network than the checkpoint describes."""
    config = dict(config or {})
    unknown = sorted(set(config) - set(DEFAULT_CONFIG))
    if unknown:
        raise ValueError(f"unknown model config key(s): {', '.join(unknown)}")
    resolved = {k: config.get(k, v) for k, v in DEFAULT_CONFIG.items()}
    resolved["widths"] = [int(w) for w in resolved["widths"]]
    resolved["convs_per_block"] = [int(k) for k in resolved["convs_per_block"]]
    if len(resolved["widths"]) != len(resolved["convs_per_block"]):
        raise ValueError("widths and convs_per_block must have the same length")
    if not resolved["widths"]:
        raise ValueError("at least one block is required")
    if any(k < 1 for k in resolved["convs_per_block"]):
        raise ValueError("every block needs at least one convolution")
    for key, allowed in CHOICES.items():
        if resolved[key] not in allowed:
            raise ValueError(f"{key}: {resolved[key]!r} is not one of {', '.join(map(str, allowed))}")
    if resolved["hidden"] < 0 or resolved["attention_reduction"] < 1:
        raise ValueError("hidden must be >= 0 and attention_reduction >= 1")
    if resolved["shortcut"] == "projection" and not resolved["skip"]:
        raise ValueError("shortcut projection needs skip true")
    return resolved


def activation(name):
    """lab's activations: ReLU, leaky ReLU (slope 0.01), ELU (alpha 1), SiLU."""
    return {
        "relu": F.relu,
        "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
        "elu": lambda x: F.elu(x, 1.0),
        "silu": F.silu,
    }[name]


class SeparableConv(nn.Module):
    """Depthwise k x k (one filter per channel, no bias), then pointwise 1x1,
    nothing between (Xception's separable convolution)."""

    def __init__(self, cin, cout, kernel, bias):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, kernel, padding=kernel // 2, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=bias)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class SqueezeExcitation(nn.Module):
    """Hu et al. 2018: y * sigmoid(fc2(relu(fc1(gap(y)))))."""

    def __init__(self, channels, hidden):
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, y):
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(y.mean(dim=(2, 3))))))
        return y * gate[:, :, None, None]


class SpatialGate(nn.Module):
    """CBAM's spatial gate: sigmoid(bn(conv7x7([max over channels, mean over
    channels]))), 2 -> 1 channel, padding 3; a bias instead of the batch norm
    when the network has none."""

    def __init__(self, batch_norm):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3, bias=not batch_norm)
        self.bn = nn.BatchNorm2d(1) if batch_norm else None

    def forward(self, x):
        pooled = torch.cat((torch.max(x, 1)[0].unsqueeze(1), torch.mean(x, 1).unsqueeze(1)), dim=1)
        s = self.conv(pooled)
        if self.bn is not None:
            s = self.bn(s)
        return x * torch.sigmoid(s)


class CBAM(nn.Module):
    """Woo et al. 2018, as the authors' code: a channel gate
    sigmoid(mlp(avgpool(y)) + mlp(maxpool(y))) with one shared
    mlp = fc2(relu(fc1(.))), then the spatial gate."""

    def __init__(self, channels, hidden, batch_norm):
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)
        self.spatial = SpatialGate(batch_norm)

    def mlp(self, v):
        return self.fc2(F.relu(self.fc1(v)))

    def forward(self, y):
        n, c, h, w = y.shape
        avg = F.avg_pool2d(y, (h, w)).view(n, c)
        mx = F.max_pool2d(y, (h, w)).view(n, c)
        gate = torch.sigmoid(self.mlp(avg) + self.mlp(mx))
        return self.spatial(y * gate[:, :, None, None])


class Shortcut(nn.Module):
    """He et al. 2016, option B: bn(conv1x1(x)) from the block's input."""

    def __init__(self, cin, cout, batch_norm):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=not batch_norm)
        self.bn = nn.BatchNorm2d(cout) if batch_norm else None

    def forward(self, x):
        s = self.conv(x)
        return self.bn(s) if self.bn is not None else s


class Block(nn.Module):
    """The block of the module docstring. The inner skip adds the first
    conv's activation to the last conv's pre-activation, so it needs no
    projection even when the block changes width (conv1 already did)."""

    def __init__(self, in_channels, width, convs, c):
        super().__init__()
        self.convs = convs
        self.batch_norm = c["batch_norm"]
        self.act = activation(c["activation"])
        self.inner = c["skip"] and c["shortcut"] == "inner" and convs >= 2
        kernel = c["kernel"]
        for j in range(1, convs + 1):
            cin = in_channels if j == 1 else width
            # A bias before batch norm is cancelled by the mean subtraction.
            if c["conv"] == "separable":
                conv = SeparableConv(cin, width, kernel, bias=not self.batch_norm)
            else:
                conv = nn.Conv2d(cin, width, kernel, stride=1, padding=kernel // 2, bias=not self.batch_norm)
            setattr(self, f"conv{j}", conv)
            if self.batch_norm:
                setattr(self, f"bn{j}", nn.BatchNorm2d(width))
        hidden = max(1, width // c["attention_reduction"])
        # Submodules under their checkpoint names only (an alias attribute
        # would register a second copy of each name in the state_dict).
        self.attention = c["attention"] if c["attention"] != "none" else None
        if self.attention == "se":
            self.se = SqueezeExcitation(width, hidden)
        elif self.attention == "cbam":
            self.cbam = CBAM(width, hidden, self.batch_norm)
        self.projection = c["skip"] and c["shortcut"] == "projection"
        if self.projection:
            self.shortcut = Shortcut(in_channels, width, self.batch_norm)

    def _pre(self, j, x):
        x = getattr(self, f"conv{j}")(x)
        if self.batch_norm:
            x = getattr(self, f"bn{j}")(x)
        return x

    def forward(self, x):
        h1 = self.act(self._pre(1, x)) if self.convs > 1 else None
        h = h1
        for j in range(2, self.convs):
            h = self.act(self._pre(j, h))
        y = self._pre(self.convs, x if self.convs == 1 else h)
        if self.attention is not None:
            y = getattr(self, self.attention)(y)
        if self.inner:
            y = y + h1
        elif self.projection:
            y = y + self.shortcut(x)
        return self.act(y)


class LabNet(nn.Module):
    def __init__(self, config=None):
        super().__init__()
        self.config = resolve_config(config)
        c = self.config
        self.n_blocks = len(c["widths"])
        cin = IN_CHANNELS
        for i, (width, convs) in enumerate(zip(c["widths"], c["convs_per_block"]), start=1):
            setattr(self, f"block{i}", Block(cin, width, convs, c))
            cin = width
        self.act = activation(c["activation"])
        if c["hidden"] > 0:
            self.fc1 = nn.Linear(cin, c["hidden"])
        self.dropout = nn.Dropout(c["dropout"])
        self.fc2 = nn.Linear(c["hidden"] if c["hidden"] > 0 else cin, c["classes"])

    def forward(self, x):
        """x: NCHW float32. Returns logits (softmax lives in the loss)."""
        pool = F.max_pool2d if self.config["pool"] == "max" else F.avg_pool2d
        for i in range(1, self.n_blocks + 1):
            x = getattr(self, f"block{i}")(x)
            if i < self.n_blocks:
                x = pool(x, 2, 2)
        x = x.mean(dim=(2, 3))
        if self.config["hidden"] > 0:
            x = self.act(self.fc1(x))
        x = self.dropout(x)
        return self.fc2(x)


def soft_cross_entropy(logits, target):
    """Cross-entropy against a probability distribution per row (RAF-DB's
    crowd-sourced soft labels); equals the usual CE for one-hot targets."""
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


# --- safetensors -----------------------------------------------------------

_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


class SafetensorsError(ValueError):
    pass


def _dtype_name(array):
    dt = array.dtype
    for name, known in _DTYPES.items():
        if dt.kind == known.kind and dt.itemsize == known.itemsize:
            return name
    raise SafetensorsError(f"unsupported dtype {dt}")


def read_safetensors(path):
    """Returns ({name: np.ndarray}, {metadata str: str}). Arrays are writable
    copies in native byte order so torch.from_numpy accepts them."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise SafetensorsError(f"{path}: too short for a safetensors header")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if 8 + header_len > len(blob):
        raise SafetensorsError(f"{path}: header length {header_len} exceeds file size {len(blob)}")
    try:
        header = json.loads(blob[8:8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    data = memoryview(blob)[8 + header_len:]
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise SafetensorsError(f"{path}: __metadata__ must map strings to strings")
    tensors = {}
    for name, info in header.items():
        try:
            dtype = _DTYPES[info["dtype"]]
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{path}: bad header entry for '{name}'") from None
        count = int(np.prod(shape, dtype=np.int64))
        if not (0 <= begin <= end <= len(data)) or end - begin != count * dtype.itemsize:
            raise SafetensorsError(
                f"{path}: '{name}' offsets [{begin}, {end}] do not fit shape {shape} "
                f"{info['dtype']} in {len(data)} data bytes")
        arr = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape)
        tensors[name] = arr.astype(dtype.newbyteorder("="), copy=True)
    return tensors, metadata


def write_safetensors(path, tensors, metadata=None):
    """Tensors in sorted name order, packed back to back; the header is padded
    with spaces so the data starts 8-byte aligned (lab maps floats straight
    out of the buffer)."""
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise SafetensorsError(f"metadata '{k}' must be str -> str")
        header["__metadata__"] = dict(metadata)
    chunks = []
    offset = 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        dtype_name = _dtype_name(arr)
        raw = np.ascontiguousarray(arr, dtype=_DTYPES[dtype_name]).tobytes()
        header[name] = {"dtype": dtype_name, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for raw in chunks:
            f.write(raw)
