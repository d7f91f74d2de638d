"""PyTorch's predictions from lab's checkpoints against lab's predictions table.

    python3 python/check_predictions.py runs.db [--split test] [--min-agreement 0.99] [--experiment NAME ...]

For every completed run with predictions on the split: the run's `best`
checkpoint loads into python/lab_model.py's LabNet with strict=True, the
faces are read from the run's dataset folder (PIL decodes the JPEG, with
libjpeg's defaults as lab's decoder), resized as lab resizes (`lab_resize`:
PIL's BILINEAR rounds its horizontal pass to 8 bits, lab does not, and that
one-level difference flips the argmax of up to 1% of the faces of a weakly
trained network), normalized as the checkpoint's `lab.normalization` says,
and PyTorch's argmax
is compared with lab's `predicted_class`. Prints one line per run; exits 1
if any run agrees on fewer than --min-agreement of its faces. Needs torch,
numpy and pillow; reads the registry with Python's sqlite3 (read-only).
"""

import argparse
import json
import os
import sqlite3
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lab_model import LabNet, read_safetensors  # noqa: E402

CLASSES = ["happiness", "surprise", "sadness", "anger", "disgust", "fear"]


def face_path(root, image):
    """The official layout's aligned crop, or a repackaged copy's file."""
    stem = os.path.splitext(image)[0]
    for candidate in (os.path.join(root, "Image", "aligned", f"{stem}_aligned.jpg"),
                      os.path.join(root, "Image", "aligned", image)):
        if os.path.exists(candidate):
            return candidate
    for dirpath, _, files in os.walk(root):
        if image in files:
            return os.path.join(dirpath, image)
    raise FileNotFoundError(f"{image} not under {root}")


def resize_taps(n_in, n_out):
    """Sources/Faces/Resize.swift's taps: a triangle whose half-width widens with the downscale factor."""
    scale = n_in / n_out
    support = max(1.0, scale)
    taps = []
    for i in range(n_out):
        center = (i + 0.5) * scale
        lo, hi = max(0, int(np.floor(center - support))), min(n_in, int(np.ceil(center + support)))
        v = [max(0.0, 1 - abs((j + 0.5 - center) / support)) for j in range(lo, hi)]
        total = np.float32(sum(v))
        taps.append((lo, [np.float32(x) / total for x in v]))
    return taps


def lab_resize(img, size):
    """img [H, W, 3] uint8 -> [size, size, 3] uint8, as lab computes it: float32 sums in tap order, no
    rounding between the passes, round half away from zero at the end."""
    src = img.astype(np.float32)
    h, w, _ = src.shape
    tmp = np.zeros((h, size, 3), np.float32)
    for x, (s, ws) in enumerate(resize_taps(w, size)):
        acc = np.zeros((h, 3), np.float32)
        for k, wk in enumerate(ws):
            acc = acc + wk * src[:, s + k, :]
        tmp[:, x, :] = acc
    out = np.zeros((size, size, 3), np.float32)
    for y, (s, ws) in enumerate(resize_taps(h, size)):
        acc = np.zeros((size, 3), np.float32)
        for k, wk in enumerate(ws):
            acc = acc + wk * tmp[s + k, :, :]
        out[y] = acc
    return np.clip(np.floor(out + np.float32(0.5)), 0, 255).astype(np.uint8)


def check_run(db, run_id, split, root, scratch):
    blob, = db.execute("SELECT data FROM checkpoints WHERE run_id = ? AND kind = 'best'", (run_id,)).fetchone()
    with open(scratch, "wb") as f:
        f.write(blob)
    tensors, meta = read_safetensors(scratch)
    net = LabNet(json.loads(meta["lab.model"]))
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}, strict=True)
    net.eval()
    size = int(meta.get("lab.image_size", "64"))
    norm = json.loads(meta["lab.normalization"])
    mean, std = np.array(norm["mean"], dtype=np.float32), np.array(norm["std"], dtype=np.float32)
    rows = db.execute("SELECT image, predicted_class FROM predictions WHERE run_id = ? AND split = ? ORDER BY image",
                      (run_id, split)).fetchall()
    x = np.stack([lab_resize(np.asarray(Image.open(face_path(root, image)).convert("RGB")), size).astype(np.float32) / 255.0
                  for image, _ in rows])
    x = (x - mean) / std
    with torch.no_grad():
        logits = torch.cat([net(torch.from_numpy(x[i:i + 256]).permute(0, 3, 1, 2).contiguous())
                            for i in range(0, len(x), 256)])
    torch_pred = [CLASSES[k] for k in logits.argmax(1).tolist()]
    agree = sum(t == lab for t, (_, lab) in zip(torch_pred, rows))
    return agree, len(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("registry")
    ap.add_argument("--split", default="test", choices=["val", "test"])
    ap.add_argument("--min-agreement", type=float, default=0.99)
    ap.add_argument("--experiment", action="append", default=[])
    a = ap.parse_args()
    if not os.path.exists(a.registry):
        sys.exit(f"error: no registry at {a.registry}")
    db = sqlite3.connect(f"file:{a.registry}?mode=ro", uri=True)
    runs = db.execute("""SELECT r.id, e.name, r.seed, r.dataset_root FROM runs r JOIN experiments e ON e.id = r.experiment_id
                         WHERE r.status = 'completed' AND EXISTS (SELECT 1 FROM predictions p WHERE p.run_id = r.id AND p.split = ?)
                         ORDER BY e.name, r.seed""", (a.split,)).fetchall()
    runs = [r for r in runs if not a.experiment or r[1] in a.experiment]
    if not runs:
        sys.exit(f"error: no completed run with {a.split} predictions in {a.registry}")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    worst, scratch = 1.0, f"/tmp/check_predictions_{os.getpid()}.safetensors"
    try:
        for run_id, name, seed, root in runs:
            agree, n = check_run(db, run_id, a.split, root, scratch)
            worst = min(worst, agree / n)
            print(f"{name} seed {seed} ({run_id[:10]}): PyTorch agrees with lab on {agree} of {n} {a.split} faces ({100 * agree / n:.1f}%)")
    finally:
        if os.path.exists(scratch):
            os.remove(scratch)
    if worst < a.min_agreement:
        sys.exit(f"error: agreement {100 * worst:.1f}% is below {100 * a.min_agreement:.1f}%")


if __name__ == "__main__":
    main()
