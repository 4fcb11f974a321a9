"""Run the authors' own TF1 candidate networks on edgefer's fold and batch order, and measure collapse.

The authors' files (CandidateExpNet_v/p1/p2/p12.py, their public repository, MIT) are imported from
where they lie (``--candidates``, by default ../shared/authors-microexpnet/code/Candidates beside the
repository), unchanged, through TensorFlow 2's tf.compat.v1. Two shims make their Python 2 / TF 1.x
files run: ``tensorflow`` seen by them is tf.compat.v1 plus ``contrib.layers.xavier_initializer``
(= glorot_uniform, what contrib's default was), and the squeeze coefficient is an int whose
``256 / c`` divides as Python 2 did. Their network, initialisation (Xavier weights, N(0, 0.5) biases,
seeded by tf.set_random_seed(seed)), loss, Adam and dropout are theirs; the data (crops 0..255) and the
batches of every epoch are edgefer's for the same seed (OUT/fold.npz from tools/collapse_study.py --export).
Records go to OUT/tf.jsonl in the shape of tools/collapse_study.py's, which summarises both.

Needs TensorFlow, kept out of edgefer: python3 -m venv /tmp/tf-collapse && /tmp/tf-collapse/bin/pip install
tensorflow-cpu numpy; then
  nice /tmp/tf-collapse/bin/python tools/collapse_tf.py --out /tmp/collapse --variants v,p1,p2,p12 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import numpy as np

EARLY_STEPS = (1, 2, 3, 5, 10)
SQUEEZE = {"m": 1, "s": 4, "xs": 8, "xxs": 16}
MAJORITY_LIMIT = 0.95  # as edgefer.train.fit.collapse


class Squeeze(int):
    """The squeeze coefficient; ``256 / c`` gives an int, as in the Python 2 the authors wrote for."""

    def __rtruediv__(self, other):
        return other // int(self)


def load_candidates(folder: Path):
    """The authors' four candidate classes, their module-level ``tensorflow`` being tf.compat.v1 + contrib."""
    import tensorflow as real_tf

    v1 = real_tf.compat.v1
    shim = types.ModuleType("tensorflow")
    shim.__getattr__ = lambda name: getattr(v1, name)
    shim.contrib = types.SimpleNamespace(layers=types.SimpleNamespace(
        xavier_initializer=lambda **kw: v1.glorot_uniform_initializer(**kw),
        xavier_initializer_conv2d=lambda **kw: v1.glorot_uniform_initializer(**kw)))
    classes = {}
    saved = sys.modules["tensorflow"]
    sys.modules["tensorflow"] = shim
    try:
        for variant in ("v", "p1", "p2", "p12"):
            path = folder / f"CandidateExpNet_{variant}.py"
            spec = importlib.util.spec_from_file_location(f"authors_candidate_{variant}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            classes[variant] = getattr(module, f"CandidateExpNet_{variant}")
    finally:
        sys.modules["tensorflow"] = saved
    return v1, classes


def one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(8, dtype=np.float32)[labels]


def run(v1, classes, fold, variant: str, size: str, seed: int, epochs: int, lr: float, recipe: str) -> dict:
    graph = v1.Graph()
    with graph.as_default():
        v1.set_random_seed(seed)
        x = v1.placeholder(v1.float32, [None, 84 * 84])
        y = v1.placeholder(v1.float32, [None, 8])
        keep = v1.placeholder(v1.float32)
        net = classes[variant](x, y, lr, 8, 84, 84, 64, keep, Squeeze(SQUEEZE[size]))
        fc1_matmul = [op for op in graph.get_operations() if op.type == "MatMul"][0].outputs[0]
        pre = fc1_matmul + net.b["bfc"]  # fc1 before its ReLU
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            if recipe == "robust":  # edgefer's robust recipe on the authors' network: fc2 starts at zero
                sess.run([v1.assign(net.w["out"], v1.zeros_like(net.w["out"])),
                          v1.assign(net.b["out"], v1.zeros_like(net.b["out"]))])
            train_x = fold["train_x"].reshape(len(fold["train_x"]), -1).astype(np.float32)
            train_y, test_y = fold["train_y"], fold["test_y"]
            test_x = fold["test_x"].reshape(len(fold["test_x"]), -1).astype(np.float32)

            def evaluate(images):
                out = [sess.run([pre, net.output], {x: images[i:i + 256], keep: 1.0})
                       for i in range(0, len(images), 256)]
                return np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out])

            order, lengths = fold[f"order_{seed}"], fold[f"lengths_{seed}"]
            batches = np.split(order, np.cumsum(lengths)[:-1])
            per_epoch = len(batches) // (len(order) // len(train_x))
            first, logits = sess.run([pre, net.output], {x: train_x[batches[0]], keep: 1.0})
            record = {"framework": "authors-tf1", "model": f"{variant}-{size}", "seed": seed, "recipe": recipe,
                      "lr": lr, "first_step": {"mean": float(first.mean()), "std": float(first.std()),
                                               "absmax": float(np.abs(first).max()), "logit_std": float(logits.std()),
                                               "alive": float((first > 0).any(0).mean())},
                      "early": [{"step": 0, "dead": _dead(evaluate(train_x)[0])}], "epochs": []}
            before = evaluate(train_x[:256])[0]
            for epoch in range(epochs):
                correct = 0
                for step, index in enumerate(batches[epoch * per_epoch:(epoch + 1) * per_epoch], start=1):
                    feed = {x: train_x[index], y: one_hot(train_y[index]), keep: 0.5}
                    _, logits = sess.run([net.optimizer, net.output], feed)
                    correct += int((logits.argmax(1) == train_y[index]).sum())
                    if epoch == 0 and step == 1:
                        record["first_step"].update(step_shift(before, evaluate(train_x[:256])[0]))
                    if epoch == 0 and step in EARLY_STEPS:
                        record["early"].append({"step": step, "dead": _dead(evaluate(train_x)[0])})
                pre_train, logits_train = evaluate(train_x)
                share = np.bincount(logits_train.argmax(1), minlength=8).max() / len(train_x)
                test_logits = evaluate(test_x)[1]
                record["epochs"].append({"epoch": epoch + 1, "dead": _dead(pre_train), "majority": float(share),
                                         "train_accuracy": correct / len(train_x),
                                         "test_accuracy": float((test_logits.argmax(1) == test_y).mean())})
    last = record["epochs"][-1]
    record["collapsed"] = bool(last["dead"] == 1.0 or last["majority"] >= MAJORITY_LIMIT)
    record["test_accuracy"] = last["test_accuracy"]
    return record


def step_shift(before: np.ndarray, after: np.ndarray) -> dict[str, float]:
    """As tools/collapse_study.py: the first step's mean fc1 shift over its spread, and how coherent it is."""
    shift = after - before
    mean = shift.mean(0)
    spread = np.maximum(before.std(0, ddof=1), 1e-12)
    same_way = (np.sign(shift) == np.sign(mean)).mean(0)
    return {"shift_over_spread": float(np.median(np.abs(mean) / spread)), "same_way": float(np.median(same_way))}


def _dead(pre: np.ndarray) -> float:
    return 1.0 - float((pre > 0).any(0).mean())


def main() -> None:
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the folder of tools/collapse_study.py --export")
    parser.add_argument("--candidates", type=Path,
                        default=repo.parent / "shared" / "authors-microexpnet" / "code" / "Candidates")
    parser.add_argument("--variants", default="v,p1,p2,p12")
    parser.add_argument("--sizes", default="xxs")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--recipe", choices=("authors", "robust"), default="authors")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    v1, classes = load_candidates(args.candidates)
    v1.disable_eager_execution()
    fold = dict(np.load(args.out / "fold.npz"))
    with open(args.out / "tf.jsonl", "a", encoding="utf-8") as log:
        for size in args.sizes.split(","):
            for variant in args.variants.split(","):
                for seed in (int(s) for s in args.seeds.split(",")):
                    record = run(v1, classes, fold, variant, size, seed, args.epochs, args.lr, args.recipe)
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                    dead = [round(e["dead"], 2) for e in record["epochs"]]
                    print(f"authors-tf1 {args.recipe} {variant}-{size} seed {seed}: first-step fc1 std "
                          f"{record['first_step']['std']:.3g}, shift/spread "
                          f"{record['first_step']['shift_over_spread']:.2f}, dead per epoch {dead}, majority "
                          f"{record['epochs'][-1]['majority']:.2f}, test {record['test_accuracy']:.3f}"
                          + (" COLLAPSED" if record["collapsed"] else ""), flush=True)


if __name__ == "__main__":
    main()
