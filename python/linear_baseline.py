"""Linear baseline: multinomial logistic regression on raw pixels.

If a linear model on pixels does nearly as well as lab's CNN, the synthetic face
set is too easy to say anything about convolutional features. numpy + Pillow only.

    python3 python/linear_baseline.py ROOT [--size 64] [--epochs 60] [--seed 1] [--json]

ROOT is in RAF-DB "basic" layout (EmoLabel/list_patition_label.txt, Image/aligned/).
"""

import argparse
import json
import os

import numpy as np
from PIL import Image

# RAF-DB code -> class index; code 7 (neutral) is left out of the six-class task.
CODE_TO_CLASS = {4: 0, 1: 1, 5: 2, 6: 3, 3: 4, 2: 5}
NAMES = ["happiness", "surprise", "sadness", "anger", "disgust", "fear"]
L2_GRID = [1e-4, 1e-3, 1e-2]
BATCH = 128
LR = 1e-3


def load(root, size):
    sets = {"train": ([], []), "test": ([], [])}
    with open(os.path.join(root, "EmoLabel", "list_patition_label.txt")) as f:
        for line in f:
            if not line.strip():
                continue
            name, code = line.split()
            split = name.split("_")[0]
            if int(code) not in CODE_TO_CLASS or split not in sets:
                continue
            path = os.path.join(root, "Image", "aligned", name[:-4] + "_aligned.jpg")
            # Pillow's BILINEAR antialiases when downscaling: pixels are averaged, not sampled.
            img = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
            sets[split][0].append(np.asarray(img, np.float32).reshape(-1) / 127.5 - 1)
            sets[split][1].append(CODE_TO_CLASS[int(code)])
    return [(np.stack(xs), np.array(ys)) for xs, ys in (sets["train"], sets["test"])]


def stratified_split(y, frac, rng):
    val = np.concatenate([rng.permutation(np.flatnonzero(y == c))[: round(frac * np.sum(y == c))]
                          for c in range(len(NAMES))])
    mask = np.zeros(len(y), bool)
    mask[val] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def train(x, y, l2s, epochs, seed):
    """Fits one model per L2 strength in l2s; returns weights [G, F, K] and biases [G, K]."""
    # All strengths share each mini-batch, so one pass over x (memory-bound) serves them all.
    rng = np.random.default_rng(seed)
    g, k = len(l2s), len(NAMES)
    w = np.zeros((x.shape[1], g * k), np.float32)
    b = np.zeros(g * k, np.float32)
    decay = np.repeat(np.asarray(l2s, np.float32), k)
    params = [w, b]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    onehot = np.eye(k, dtype=np.float32)[y][:, None, :]
    t = 0
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for s in range(0, len(y), BATCH):
            idx = order[s:s + BATCH]
            xb = x[idx]
            logits = (xb @ w + b).reshape(len(idx), g, k)
            p = np.exp(logits - logits.max(2, keepdims=True))
            p /= p.sum(2, keepdims=True)
            d = ((p - onehot[idx]) / len(idx)).reshape(len(idx), g * k)
            # Coupled L2 (a penalty in the loss, not AdamW decay); bias is not penalised.
            grads = [xb.T @ d + decay * w, d.sum(0)]
            t += 1
            for p_, gr, m_, v_ in zip(params, grads, m, v):
                m_ *= 0.9
                m_ += 0.1 * gr
                v_ *= 0.999
                v_ += 0.001 * gr * gr
                p_ -= LR * (m_ / (1 - 0.9 ** t)) / (np.sqrt(v_ / (1 - 0.999 ** t)) + 1e-8)
    return w.reshape(-1, g, k).transpose(1, 0, 2), b.reshape(g, k)


def scores(y, pred):
    k = len(NAMES)
    cm = np.zeros((k, k), int)
    np.add.at(cm, (y, pred), 1)
    tp = np.diag(cm)
    recall = tp / np.maximum(cm.sum(1), 1)
    f1 = 2 * tp / np.maximum(cm.sum(1) + cm.sum(0), 1)
    return float(np.mean(y == pred)), float(f1.mean()), recall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    (x_all, y_all), (x_test, y_test) = load(a.root, a.size)
    tr, va = stratified_split(y_all, 0.1, np.random.default_rng(a.seed))

    def standardize(x_fit, *xs):
        mean, std = x_fit.mean(0), x_fit.std(0)
        std[std < 1e-6] = 1  # constant pixels (e.g. background) would divide by zero
        return [(x - mean) / std for x in xs]

    x_tr, x_va = standardize(x_all[tr], x_all[tr], x_all[va])
    ws, bs = train(x_tr, y_all[tr], L2_GRID, a.epochs, a.seed)
    val_acc = {c: scores(y_all[va], np.argmax(x_va @ w + b, 1))[0]
               for c, w, b in zip(L2_GRID, ws, bs)}
    l2 = max(L2_GRID, key=lambda c: val_acc[c])  # ties go to the weakest L2

    # Refit on all of train so the validation hold-out doesn't handicap the test number.
    x_fit, x_te = standardize(x_all, x_all, x_test)
    (w,), (b,) = train(x_fit, y_all, [l2], a.epochs, a.seed)
    acc, macro_f1, recall = scores(y_test, np.argmax(x_te @ w + b, 1))
    majority = float(np.mean(y_test == np.bincount(y_all, minlength=6).argmax()))

    if a.json:
        print(json.dumps({"test_accuracy": acc, "test_macro_f1": macro_f1,
                          "majority_accuracy": majority, "l2": l2,
                          "n_train": len(y_all), "n_test": len(y_test)}))
        return
    counts = lambda y: ", ".join(f"{n} {c}" for n, c in zip(NAMES, np.bincount(y, minlength=6)))
    print(f"images: {len(tr)} train + {len(va)} val = {len(y_all)}, {len(y_test)} test "
          f"({a.size}x{a.size}, neutral excluded)")
    print(f"train classes: {counts(y_all)}")
    print(f"test classes:  {counts(y_test)}")
    print("val accuracy by L2: " + ", ".join(f"{c:g}: {val_acc[c]:.3f}" for c in L2_GRID)
          + f" -> L2 {l2:g}")
    print(f"test accuracy {acc:.3f}, macro-F1 {macro_f1:.3f} (majority class {majority:.3f})")
    print("test recall: " + ", ".join(f"{n} {r:.3f}" for n, r in zip(NAMES, recall)))


if __name__ == "__main__":
    main()
