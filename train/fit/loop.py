"""The epoch loop shared by the teacher and the students: Adam, seeded in-memory batches, exact resume.

Batches are drawn from tensors in memory by a dedicated, seeded ``torch.Generator`` (one
permutation per epoch; the last, smaller batch is kept, as the authors did, unless it would hold a
single item: that one joins the batch before, for BatchNorm's sake), so the batch order
depends on the seed alone. A checkpoint is written at the end of every epoch, between steps every
``checkpoint_seconds``, and when the run is interrupted (Ctrl-C, SIGTERM, or KeyboardInterrupt raised by a
hook): the loop finishes the step it is in, saves, then raises KeyboardInterrupt. Resuming restores
model, optimiser, RNG states and the position in the epoch, so on CPU the final weights equal those
of an uninterrupted run (same machine and thread count).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgefer import interrupt
from edgefer.errors import InputError
from edgefer.train.fit.checkpoint import (
    TrainState,
    capture_rng,
    load_state,
    remove_partial_files,
    restore_rng,
    save_state,
)
from edgefer.train.fit.reports import MetricsLog
from edgefer.train.fit.settings import LoopConfig

Prepare = Callable[[torch.Tensor], torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]
#: Fingerprint keys that may change when a run resumes (they do not change the weights).
MAY_CHANGE = {"epochs"}


@dataclass(frozen=True)
class TrainData:
    """Model inputs before ``prepare`` (e.g. uint8 crops), labels, and optional per-item soft targets."""

    inputs: torch.Tensor
    labels: torch.Tensor
    targets: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)


class Hooks:
    """Progress callbacks; a hook may raise KeyboardInterrupt to stop the run resumably."""

    def on_start(self, first_epoch: int, epochs: int, steps_per_epoch: int) -> None: ...

    def on_step(self, epoch: int, step: int, steps: int, loss: float) -> None: ...

    def on_epoch(self, record: dict) -> None: ...


@dataclass
class FitResult:
    history: list[dict]
    test_logits: torch.Tensor
    resumed_at: tuple[int, int] | None = None  # (epoch, step) the run went on from
    train_seconds: float = 0.0  # in this call (not counting evaluation and checkpoints)
    trained_items: int = 0  # crops trained on in this call


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (the global generator also drives dropout)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fit(model: nn.Module, train: TrainData, test: TrainData, loss_fn: LossFn, prepare: Prepare,
        config: LoopConfig, checkpoint: str | os.PathLike, fingerprint: dict[str, object],
        metrics: MetricsLog | None = None, hooks: Hooks | None = None) -> FitResult:
    """Train ``model`` for ``config.epochs`` epochs, going on from ``checkpoint`` if it exists."""
    run = _Run(model, train, test, loss_fn, prepare, config, Path(checkpoint), fingerprint, metrics,
               hooks or Hooks())
    with _deterministic(), _deferred_interrupt() as interrupted:
        run.interrupted = interrupted
        return run.fit()


class _Run:
    def __init__(self, model, train, test, loss_fn, prepare, config, checkpoint, fingerprint, metrics, hooks):
        self.model, self.train, self.test = model, train, test
        self.loss_fn, self.prepare, self.config = loss_fn, prepare, config
        self.checkpoint, self.fingerprint = checkpoint, {**fingerprint, **_loop_fingerprint(config)}
        self.metrics, self.hooks = metrics, hooks
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.epoch = self.step = 0
        self.running = _zero_running()
        self.history: list[dict] = []
        self.interrupted: list[bool] = [False]
        self.last_save = time.monotonic()

    def fit(self) -> FitResult:
        if len(self.train) == 0 or len(self.test) == 0:
            raise InputError(f"empty split: {len(self.train)} training and {len(self.test)} test items")
        resumed = self._resume()
        self.hooks.on_start(self.epoch, self.config.epochs, -(-len(self.train) // self.config.batch_size))
        self.model.train()
        test_logits, seconds, items = None, 0.0, 0
        while self.epoch < self.config.epochs:
            test_logits, epoch_seconds, epoch_items = self._epoch()
            seconds, items = seconds + epoch_seconds, items + epoch_items
        if test_logits is None:
            test_logits = evaluate(self.model, self.test, self.prepare, self.config.eval_batch_size)[2]
        return FitResult(self.history, test_logits, resumed, seconds, items)

    def _epoch(self) -> tuple[torch.Tensor | None, float, int]:
        """Train the rest of the current epoch, evaluate, checkpoint; the test logits if evaluated."""
        start, first = time.perf_counter(), self.step
        epoch_generator = self.generator.get_state()
        batches = _batches(torch.randperm(len(self.train), generator=self.generator), self.config.batch_size)
        for index in range(first, len(batches)):
            self._train_step(batches[index])
            self.step = index + 1
            self._after_step(len(batches), epoch_generator)
        seconds, items = time.perf_counter() - start, sum(len(b) for b in batches[first:])
        self.epoch, self.step = self.epoch + 1, 0
        record, test_logits = self._epoch_record(seconds, items)
        self.history.append(record)
        self._save(self.generator.get_state())
        if self.metrics:
            self.metrics.append(record)
        self.hooks.on_epoch(record)
        if self.interrupted[0]:
            raise KeyboardInterrupt
        return test_logits, seconds, items

    def _resume(self) -> tuple[int, int] | None:
        remove_partial_files(self.checkpoint)
        state = load_state(self.checkpoint)
        if state is None:
            if self.metrics:
                self.metrics.rewrite([])
            return None
        _check_fingerprint(state.fingerprint, self.fingerprint, self.checkpoint)
        if state.epoch > self.config.epochs:
            raise InputError(f"{self.checkpoint.parent}: already trained {state.epoch} epochs, more than "
                             f"--epochs {self.config.epochs}")
        self.model.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        self.generator.set_state(restore_rng(state.rng))
        self.epoch, self.step, self.running, self.history = state.epoch, state.step, state.running, state.history
        if self.metrics:
            self.metrics.rewrite(self.history)
        return state.epoch, state.step

    def _train_step(self, index: torch.Tensor) -> None:
        inputs = self.prepare(self.train.inputs[index])
        labels = self.train.labels[index]
        targets = self.train.targets[index] if self.train.targets is not None else None
        logits = self.model(inputs)
        loss = self.loss_fn(logits, labels, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.running["loss"] += float(loss.detach()) * len(index)
        self.running["correct"] += int((logits.detach().argmax(1) == labels).sum())
        self.running["seen"] += len(index)

    def _after_step(self, steps: int, epoch_generator: torch.Tensor) -> None:
        try:
            self.hooks.on_step(self.epoch, self.step, steps, self.running["loss"] / self.running["seen"])
        except KeyboardInterrupt:
            self.interrupted[0] = True
        if self.step == steps:
            return  # the epoch's end saves
        if self.interrupted[0] or time.monotonic() - self.last_save >= self.config.checkpoint_seconds:
            self._save(epoch_generator)
        if self.interrupted[0]:
            raise KeyboardInterrupt

    def _epoch_record(self, seconds: float, items: int) -> tuple[dict, torch.Tensor | None]:
        seen = max(self.running["seen"], 1)
        record = {"epoch": self.epoch, "train_loss": self.running["loss"] / seen,
                  "train_accuracy": self.running["correct"] / seen,
                  "seconds": round(seconds, 4), "images_per_second": round(items / max(seconds, 1e-9), 1)}
        self.running = _zero_running()
        logits = None
        if self.epoch % self.config.eval_every == 0 or self.epoch == self.config.epochs:
            loss, accuracy, logits = evaluate(self.model, self.test, self.prepare, self.config.eval_batch_size)
            record.update(test_loss=loss, test_accuracy=accuracy)
        return record, logits

    def _save(self, batch_generator_state: torch.Tensor) -> None:
        state = TrainState(self.epoch, self.step, self.model.state_dict(), self.optimizer.state_dict(),
                           capture_rng(batch_generator_state), dict(self.running), list(self.history),
                           self.fingerprint)
        save_state(self.checkpoint, state)
        self.last_save = time.monotonic()


def evaluate(model: nn.Module, data: TrainData, prepare: Prepare,
             batch_size: int = 256) -> tuple[float, float, torch.Tensor]:
    """Cross-entropy loss, accuracy and logits of ``data`` in eval mode (no dropout, BN running stats)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(prepare(data.inputs[i:i + batch_size]))
                            for i in range(0, len(data), batch_size)])
    model.train(was_training)
    loss = float(F.cross_entropy(logits, data.labels))
    accuracy = float((logits.argmax(1) == data.labels).float().mean())
    return loss, accuracy, logits


def _batches(order: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Consecutive batches of ``size``; a last batch of one item joins the one before (BatchNorm needs two)."""
    batches = list(order.split(size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def _zero_running() -> dict[str, float]:
    return {"loss": 0.0, "correct": 0, "seen": 0}


def _loop_fingerprint(config: LoopConfig) -> dict[str, object]:
    return {"epochs": config.epochs, "batch_size": config.batch_size, "lr": config.lr, "seed": config.seed}


def _check_fingerprint(saved: dict, current: dict, checkpoint: Path) -> None:
    keys = sorted((set(saved) | set(current)) - MAY_CHANGE)
    changed = [f"{k} {saved.get(k)!r} -> {current.get(k)!r}" for k in keys if saved.get(k) != current.get(k)]
    if changed:
        raise InputError(f"{checkpoint} belongs to a run with other settings ({'; '.join(changed)}): "
                         "use another --out, or delete the checkpoint to start over")


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    previous = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=warn_only)


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[list[bool]]:
    """First Ctrl-C or SIGTERM: set a flag the loop checks between steps (it saves, then raises
    KeyboardInterrupt; edgefer.interrupt remembers which signal, for the exit code). A second one
    interrupts at once."""
    flag = [False]
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    signals = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    previous = {}
    for number in signals:
        handler = signal.getsignal(number)
        if handler is None:  # installed outside Python: restore Python's default instead
            handler = signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL
        previous[number] = handler

    def deferred(signum, frame):
        flag[0] = True
        interrupt.note(signum)
        for number in signals:
            signal.signal(number, previous[number])

    for number in signals:
        signal.signal(number, deferred)
    try:
        yield flag
    finally:
        for number in signals:
            signal.signal(number, previous[number])
