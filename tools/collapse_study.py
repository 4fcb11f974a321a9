"""Why do some family members collapse to one class? Measure it on edgefer's own trainer (issue 18).

For every variant x size x seed x recipe: train with edgefer's loop (train.fit.loop.fit) on a fold of
synthetic faces in the folder layout (tests/synthetic_faces.py), and record
- the first step's fc1 pre-activation scale (mean, std, max |.|, share of units alive) on the first batch,
- the share of dead fc1 units (pre-activation <= 0 on every training crop) after early steps and per epoch,
- training accuracy and the share of the most predicted class on the training set, test accuracy,
- whether the run collapsed (edgefer.train.fit.collapse.diagnose).
One JSON line per run goes to OUT/edgefer.jsonl; ``--export`` also writes the fold and the batch order
of every seed (OUT/fold.npz) for tools/collapse_tf.py, which runs the authors' TF1 candidates on them.

  nice python tools/collapse_study.py --out /tmp/collapse --variants v,p1,p2,p12 --sizes xxs --seeds 0,1,2
  python tools/collapse_study.py --summary /tmp/collapse/edgefer.jsonl /tmp/collapse/tf.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

EARLY_STEPS = (1, 2, 3, 5, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--variants", default="v,p1,p2,p12")
    parser.add_argument("--sizes", default="xxs")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--recipes", default="authors")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--per-class", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--export", action="store_true", help="write OUT/fold.npz for tools/collapse_tf.py")
    parser.add_argument("--summary", nargs="+", type=Path, help="summarise JSON-lines files and exit")
    args = parser.parse_args()
    if args.summary:
        print(summarise([json.loads(line) for path in args.summary for line in path.read_text().splitlines()]))
        return
    study(args)


def study(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    fold = load_synthetic_fold(args.out / "faces", args.subjects, args.per_class)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.export:
        export_fold(fold, seeds, args.epochs, args.out / "fold.npz")
    with open(args.out / "edgefer.jsonl", "a", encoding="utf-8") as log:
        for recipe in args.recipes.split(","):
            for size in args.sizes.split(","):
                for variant in args.variants.split(","):
                    for seed in seeds:
                        record = measure_run(fold, f"{variant}-{size}", seed, recipe, args.epochs, args.lr)
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                        print(one_line(record), flush=True)


def load_synthetic_fold(root: Path, subjects: int, per_class: int):
    """Fold 0 of 5, subject-independent, of a synthetic folder-layout set (made once under ``root``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from synthetic_faces import write_folder

    from edgefer.train.data.datasets import LayoutOptions
    from edgefer.train.data.folds import load_fold
    from edgefer.train.data.options import DataOptions

    if not root.exists():
        write_folder(root, subjects=subjects, per_class=per_class, seed=0)
    options = DataOptions(root=root, dataset="folder", layout=LayoutOptions(subject_regex=r"^(s\d+)_"),
                          split="subject", folds=5, fold=0, cache_dir=root.parent / "crop-cache")
    return load_fold(options)


def batch_orders(n: int, seed: int, epochs: int, batch_size: int = 64) -> list[list[list[int]]]:
    """The batches of every epoch exactly as edgefer's loop draws them for ``seed``."""
    import torch

    from edgefer.train.fit.loop import _batches

    generator = torch.Generator().manual_seed(seed)
    return [[b.tolist() for b in _batches(torch.randperm(n, generator=generator), batch_size)]
            for _ in range(epochs)]


def export_fold(fold, seeds: list[int], epochs: int, path: Path) -> None:
    """Crops (N, 84, 84) uint8, labels, and the flat batch order + batch lengths per seed."""
    import numpy as np

    arrays = {"train_x": fold.train.inputs[:, 0].numpy(), "train_y": fold.train.labels.numpy(),
              "test_x": fold.test.inputs[:, 0].numpy(), "test_y": fold.test.labels.numpy()}
    for seed in seeds:
        epochs_ = batch_orders(len(fold.train), seed, epochs)
        arrays[f"order_{seed}"] = np.array([i for e in epochs_ for b in e for i in b], np.int64)
        arrays[f"lengths_{seed}"] = np.array([len(b) for e in epochs_ for b in e], np.int64)
    np.savez_compressed(path, **arrays)


def recipes() -> dict:
    """edgefer's recipes plus two measured and not kept: pixels 0..1 with He-normal weights and zero
    biases (``kaiming``), and the same with fc2 starting at zero (``kaiming0``)."""
    from dataclasses import dataclass

    from torch import nn

    from edgefer.train.fit.recipes import RECIPES, Recipe

    @dataclass(frozen=True)
    class Scaled(Recipe):
        def initialise(self, model):
            for module in model.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                    nn.init.zeros_(module.bias)
            if self.zero_fc2:
                nn.init.zeros_(model.fc2.weight)

        def prepare(self, inputs):
            return inputs.float() / 255.0

    return {**RECIPES, "kaiming": Scaled("kaiming", "pixels 0..1, He-normal weights, zero biases"),
            "kaiming0": Scaled("kaiming0", "kaiming with fc2 starting at zero", zero_fc2=True)}


def measure_run(fold, name: str, seed: int, recipe_name: str, epochs: int, lr: float = 1e-4) -> dict:
    """Train one run with edgefer's loop and record its fc1 health; see the module docstring."""
    import torch

    from edgefer.train.fit.collapse import dead_units, diagnose, fc1_preactivations
    from edgefer.train.fit.loop import Hooks, fit, seed_everything
    from edgefer.train.fit.settings import LoopConfig
    from edgefer.train.models.registry import create_model

    recipe = recipes()[recipe_name]
    seed_everything(seed)
    model = create_model(name, dropout=0.5)
    recipe.initialise(model)
    prepare = recipe.prepare
    batch = prepare(fold.train.inputs[batch_orders(len(fold.train), seed, 1)[0][0]])
    first = fc1_preactivations(model, batch)
    with torch.no_grad():
        logits = model.eval()(batch)
    model.train()
    record = {"framework": "edgefer", "model": name, "seed": seed, "recipe": recipe.name, "lr": lr,
              "first_step": {"mean": float(first.mean()), "std": float(first.std()),
                             "absmax": float(first.abs().max()), "logit_std": float(logits.std()),
                             "alive": float((first > 0).any(0).float().mean())},
              "early": [{"step": 0, "dead": dead_units(model, fold.train, prepare)}], "epochs": []}
    probe_inputs = prepare(fold.train.inputs[:256])
    before = fc1_preactivations(model, probe_inputs)

    class Probe(Hooks):
        def on_step(self, epoch, step, steps, loss):
            if epoch == 0 and step == 1:
                record["first_step"].update(step_shift(before, fc1_preactivations(model, probe_inputs)))
            if epoch == 0 and step in EARLY_STEPS:
                record["early"].append({"step": step, "dead": dead_units(model, fold.train, prepare)})

        def on_epoch(self, row):
            verdict = diagnose(model, fold.train, prepare)
            record["epochs"].append({"epoch": row["epoch"], "dead": verdict.dead_fc1,
                                     "majority": verdict.majority_share, "train_accuracy": row["train_accuracy"],
                                     "test_accuracy": row.get("test_accuracy")})

    loss = lambda logits, labels, targets: torch.nn.functional.cross_entropy(logits, labels)  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        config = LoopConfig(epochs=epochs, lr=lr, seed=seed, checkpoint_seconds=1e9)
        fit(model, fold.train, fold.test, loss, prepare, config, Path(tmp) / "checkpoint.pt", {}, hooks=Probe())
    with torch.no_grad():
        verdict = diagnose(model, fold.train, prepare)
    record["collapsed"] = verdict.collapsed
    record["test_accuracy"] = record["epochs"][-1]["test_accuracy"]
    return record


def step_shift(before, after) -> dict[str, float]:
    """How the first Adam step moved each fc1 unit: its mean shift over inputs in units of its spread
    over inputs (median over units), and the share of inputs that moved the same way as the mean."""
    shift = after - before
    mean = shift.mean(0)
    spread = before.std(0).clamp_min(1e-12)
    moved = mean != 0  # fc1 does not move at all at the first step when fc2 starts at zero
    same_way = (shift.sign() == mean.sign()).float().mean(0)[moved]
    return {"shift_over_spread": float((mean.abs() / spread).median()),
            "same_way": float(same_way.median()) if moved.any() else None}


def one_line(r: dict) -> str:
    last = r["epochs"][-1]
    return (f"{r['framework']:<8} {r['recipe']:<8} {r['model']:<8} seed {r['seed']}: first-step fc1 std "
            f"{r['first_step']['std']:.3g}, shift/spread {r['first_step'].get('shift_over_spread', 0):.2f} "
            f"({_fmt(r['first_step'].get('same_way'))} same way), "
            f"dead per epoch {[round(e['dead'], 2) for e in r['epochs']]}, "
            f"majority {last['majority']:.2f}, test {last['test_accuracy']:.3f}"
            + (" COLLAPSED" if r["collapsed"] else ""))


def summarise(records: list[dict]) -> str:
    """Markdown: collapse rate and median figures per framework, recipe and member."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["framework"], r["recipe"], r.get("lr", 1e-4), r["model"])].append(r)
    lines = ["| code | recipe | lr | member | collapsed | first batch: fc1 pre-act. std, logit std "
             "| step 1: fc1 shift / spread, same way | dead fc1 at init, after step 1, 5, 10 | dead fc1 per epoch "
             "| test acc. of the others |", "|---" * 10 + "|"]
    for (framework, recipe, lr, model), runs in sorted(groups.items()):
        collapsed = sum(r["collapsed"] for r in runs)
        early = {s: _median([e["dead"] for r in runs for e in r["early"] if e["step"] == s]) for s in STEPS}
        per_epoch = [_median([r["epochs"][k]["dead"] for r in runs if len(r["epochs"]) > k])
                     for k in range(max(len(r["epochs"]) for r in runs))]
        alive = [r["test_accuracy"] for r in runs if not r["collapsed"]]
        lines.append(f"| {framework} | {recipe} | {lr:g} | {model} | {collapsed}/{len(runs)} | "
                     f"{_median([r['first_step']['std'] for r in runs]):.3g}, "
                     f"{_fmt(_median([r['first_step'].get('logit_std') for r in runs]))} | "
                     f"{_fmt(_median([r['first_step'].get('shift_over_spread') for r in runs]))}, "
                     f"{_fmt(_median([_moved(r) for r in runs]))} | "
                     f"{', '.join(_fmt(early[s]) for s in STEPS)} | "
                     f"{', '.join(_fmt(d) for d in per_epoch)} | {_fmt(_median(alive))} |")
    return "\n".join(lines)


STEPS = (0, 1, 5, 10)


def _moved(record: dict) -> float | None:
    """The share of inputs moving with the mean, where fc1 moved at the first step at all."""
    step = record["first_step"]
    return step.get("same_way") if step.get("shift_over_spread") else None


def _median(values: list[float]) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
