"""kill -9 at random moments: no torn checkpoint or artifact ever has a final name.

Real processes killed with SIGKILL, so no cleanup handler runs; what they leave behind is then read back.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgefer.fileio import remove_stale_staging  # noqa: E402
from edgefer.runtime import open_backend  # noqa: E402
from edgefer.train.fit.checkpoint import load_state, remove_partial_files  # noqa: E402
from edgefer.zoo import pretrained  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs fork and SIGKILL")

TRIALS = 20
PARTIAL = re.compile(r"\.checkpoint\.pt\..+\.tmp")

#: Run in a fresh interpreter: imports torch once, then per trial writes checkpoint 0, forks a child that
#: saves checkpoints 1, 2, 3... in a loop, and SIGKILLs it at a random moment of its second or third save.
SAVER = """if True:
    import os, random, select, signal, sys, time
    from pathlib import Path
    import torch
    from edgefer.train.fit.checkpoint import TrainState, save_state

    root, trials, rng = Path(sys.argv[1]), int(sys.argv[2]), random.Random(int(sys.argv[3]))
    torch.set_num_threads(1)  # an OpenMP pool does not survive fork(): the child would hang in it

    def state(n):
        model = {"w": torch.full((1_000_000,), float(n)), "b": torch.arange(1000) + n}
        return TrainState(n, 0, model, {"state": {}, "param_groups": []}, {"torch": torch.get_rng_state()},
                          {}, [], {"n": n})

    for trial in range(trials):
        folder = root / f"trial{trial:02d}"
        folder.mkdir()
        save_state(folder / "checkpoint.pt", state(0))
        saved, done = os.pipe()
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            try:
                n = 1
                while True:
                    save_state(folder / "checkpoint.pt", state(n))
                    os.write(done, b".")
                    n += 1
            finally:
                os._exit(1)
        if not select.select([saved], [], [], 60)[0]:  # wait for the child's first complete save
            os.kill(pid, signal.SIGKILL)
            sys.exit("the saving child made no progress in 60 s")
        os.read(saved, 1)
        time.sleep(rng.uniform(0, 2 * (time.perf_counter() - start)))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
"""


@pytest.mark.slow
def test_sigkill_during_checkpoint_saves_never_leaves_a_torn_checkpoint(tmp_path):
    result = subprocess.run([sys.executable, "-c", SAVER, str(tmp_path), str(TRIALS), "24"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    reached, partial = [], 0
    for folder in sorted(tmp_path.glob("trial*")):
        names = {p.name for p in folder.iterdir()}
        assert "checkpoint.pt" in names
        assert all(PARTIAL.fullmatch(name) for name in names - {"checkpoint.pt"}), names
        partial += len(names) - 1
        state = load_state(folder / "checkpoint.pt")  # weights_only=True, after the pickle scan
        n = state.epoch
        assert state.fingerprint == {"n": n}
        assert torch.equal(state.model["w"], torch.full((1_000_000,), float(n)))
        assert torch.equal(state.model["b"], torch.arange(1000) + n)
        reached.append(n)
        (folder / ".model.safetensors.x1y2.tmp").write_bytes(b"torn")  # as a kill during the final save leaves
        remove_partial_files(folder / "checkpoint.pt")  # what the training loop does when it starts
        assert [p.name for p in folder.iterdir()] == ["checkpoint.pt"]
    assert len(reached) == TRIALS
    assert min(reached) >= 1  # each kill came after the child had replaced checkpoint 0
    print(f"{partial} partial temp files left by {TRIALS} kills; checkpoints reached {reached}")


@pytest.mark.slow
def test_sigkill_during_convert_leaves_old_or_complete_artifacts(edgefer, tmp_path):
    """The first run writes artifacts; later runs into the same folder are killed at random moments."""
    out = tmp_path / "models"
    args = ["convert", "microexpnet-ck", "--to", "onnx,openvino", "--out", out]
    command = [sys.executable, "-m", "edgefer", *args]  # the killed runs below: Popen, to signal them
    start = time.perf_counter()
    first = edgefer(*args, timeout=300)
    seconds = time.perf_counter() - start
    assert first.returncode == 0, first.stderr
    crops = np.random.default_rng(0).integers(0, 256, (3, 1, 84, 84)).astype(np.float32)
    reference = open_backend(pretrained("microexpnet-ck").onnx).run(crops)
    rng = random.Random(7)
    for _ in range(2):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.0) * seconds)
        process.send_signal(signal.SIGKILL)
        process.wait()
        _assert_whole_artifacts(out, crops, reference)
    leftovers = list(tmp_path.glob(".edgefer-convert-*"))
    remove_stale_staging(tmp_path, ".edgefer-convert-")  # what the next convert does first
    assert not list(tmp_path.glob(".edgefer-convert-*"))
    print(f"convert took {seconds:.1f} s; {len(leftovers)} staging folders left by the kills were removed")


def _assert_whole_artifacts(out: Path, crops: np.ndarray, reference: np.ndarray) -> None:
    """Every artifact in ``out`` is complete and gives the bundled model's logits; nothing else is there."""
    names = {p.name for p in out.iterdir()}
    artifacts = sorted(n for n in names if n.endswith((".onnx", ".xml")))
    weights = {n for n in names if n.endswith(".bin")}
    assert names == set(artifacts) | weights, names  # no temp file ever carries a final name
    for xml in (n for n in artifacts if n.endswith(".xml")):
        assert xml[:-4] + ".bin" in weights
    for name in artifacts:
        logits = open_backend(out / name).run(crops)
        np.testing.assert_allclose(logits, reference, atol=1e-4, rtol=1e-4)
