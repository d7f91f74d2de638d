"""PyTorch twin of lab's CNN (DESIGN.md section 2) plus a dependency-free
safetensors reader/writer.

The module and parameter names are the checkpoint format: lab writes its
weights under exactly these state_dict names and layouts, so a checkpoint
from lab loads here with strict=True and the reference fixtures produced
here can be compared name by name in the Swift tests.
"""

import json
import struct

import numpy as np
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
}

IN_CHANNELS = 3


def resolve_config(config=None):
    """Defaults filled in; unknown keys rejected so a typo cannot silently
    build a different network than the checkpoint describes."""
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
    return resolved


class Block(nn.Module):
    """k 3x3 convolutions; the skip adds the first conv's activation to the
    last conv's pre-activation, so it needs no projection even when the
    block changes width (conv1 already did)."""

    def __init__(self, in_channels, width, convs, skip, batch_norm):
        super().__init__()
        self.convs = convs
        self.skip = skip and convs >= 2
        self.batch_norm = batch_norm
        for j in range(1, convs + 1):
            cin = in_channels if j == 1 else width
            # A bias before batch norm is cancelled by the mean subtraction.
            setattr(self, f"conv{j}", nn.Conv2d(cin, width, 3, stride=1, padding=1,
                                                bias=not batch_norm))
            if batch_norm:
                setattr(self, f"bn{j}", nn.BatchNorm2d(width))

    def _pre(self, j, x):
        x = getattr(self, f"conv{j}")(x)
        if self.batch_norm:
            x = getattr(self, f"bn{j}")(x)
        return x

    def forward(self, x):
        h1 = F.relu(self._pre(1, x))
        if self.convs == 1:
            return h1
        h = h1
        for j in range(2, self.convs):
            h = F.relu(self._pre(j, h))
        out = self._pre(self.convs, h)
        if self.skip:
            out = out + h1
        return F.relu(out)


class LabNet(nn.Module):
    def __init__(self, config=None):
        super().__init__()
        self.config = resolve_config(config)
        c = self.config
        self.n_blocks = len(c["widths"])
        cin = IN_CHANNELS
        for i, (width, convs) in enumerate(zip(c["widths"], c["convs_per_block"]), start=1):
            setattr(self, f"block{i}", Block(cin, width, convs, c["skip"], c["batch_norm"]))
            cin = width
        self.fc1 = nn.Linear(cin, c["hidden"])
        self.dropout = nn.Dropout(c["dropout"])
        self.fc2 = nn.Linear(c["hidden"], c["classes"])

    def forward(self, x):
        """x: NCHW float32. Returns logits (softmax lives in the loss)."""
        for i in range(1, self.n_blocks + 1):
            x = getattr(self, f"block{i}")(x)
            if i < self.n_blocks:
                x = F.max_pool2d(x, 2, 2)
        x = x.mean(dim=(2, 3))
        x = F.relu(self.fc1(x))
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
