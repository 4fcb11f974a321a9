"""Time the authors' TensorFlow MicroExpNet graph against a bare ONNX Runtime session, in alternating blocks.

The speed-up of edgefer over the authors' graph is only meaningful when both sides are timed on the same
machine in the same run: this script times them block after block (TF, ORT, TF, ORT, ...) at batch 1 on
one thread and at batch 256 on ``--throughput-threads`` threads, and writes the medians as JSON for
``edgefer report --authors FILE``. ``--edgefer-backend B --edgefer-precision P`` adds a third contender
to the same blocks: ``Recognizer(..., backend=B, precision=P).classify`` on the same batch, i.e. edgefer's
path end to end (input checks and softmax included), e.g. OpenVINO in bf16 or int8 where the CPU has it.
Needs tensorflow (not an edgefer dependency), onnxruntime and opencv (and openvino for that backend) in
one environment, e.g. a throwaway one; edgefer's runtime is imported from this checkout:

    python -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu onnxruntime opencv-python-headless"<5"
    /tmp/tfenv/bin/python tools/time_authors_graph.py --models CLONE/Models --json authors.json
    # CLONE: a clone of https://github.com/cuguilke/microexpnet (the authors' checkpoints)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests" / "reference"))
sys.path.insert(1, str(REPO_ROOT))  # edgefer's runtime, for --edgefer-backend

import make_authors_reference as authors  # noqa: E402  (sets TF's thread and log settings first)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from edgefer.sysinfo import cpu_features, cpu_name  # noqa: E402

ONNX = REPO_ROOT / "edgefer" / "models" / "microexpnet-{key}.onnx"
SCHEMA = "edgefer.authors-timing/1"


def alternating_blocks(contenders: dict, blocks: int, calls: int) -> dict[str, float]:
    """Median over ``blocks`` of the mean seconds per call, the contenders timed in turn block after block."""
    for call in contenders.values():
        for _ in range(max(1, calls // 4)):
            call()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(blocks):
        for name, call in contenders.items():
            start = time.perf_counter()
            for _ in range(calls):
                call()
            samples[name].append((time.perf_counter() - start) / calls)
    return {name: float(np.median(values)) for name, values in samples.items()}


def tensorflow_call(models: Path, key: str, batch: np.ndarray, threads: int):
    """A zero-argument call running the authors' graph on ``batch`` (N, 84, 84), and the session to close."""
    folder, stem = authors.MODELS[key]
    prefix = models / folder / stem
    graph = tf.Graph()
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=1)
    sess = tf.compat.v1.Session(graph=graph, config=config)
    with graph.as_default():
        tf.compat.v1.train.import_meta_graph(str(prefix.with_suffix(".meta")), clear_devices=True).restore(
            sess, str(prefix))
        logits = authors._find_logits(graph)
        x, keep = authors._find_placeholders(graph, logits)
    feed = {x: batch.reshape(len(batch), -1) if len(x.shape) == 2 else batch[..., None]}
    if keep is not None:
        feed[keep] = 1.0
    return (lambda: sess.run(logits, feed_dict=feed)), sess


def onnxruntime_call(key: str, batch: np.ndarray, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(ONNX).format(key=key), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.ascontiguousarray(batch[:, None])}
    return lambda: session.run(None, feed)


def edgefer_call(key: str, batch: np.ndarray, threads: int, backend: str, precision: str | None, model: str | None):
    """edgefer's own path on ``batch``: Recognizer.classify on ``backend`` in ``precision``; and what ran."""
    from edgefer import Recognizer

    recognizer = Recognizer(model or f"microexpnet-{key}", backend=backend, threads=threads, precision=precision)
    label = f"edgefer {recognizer.backend.name} {recognizer.backend.precision}"
    return (lambda: recognizer.classify(batch)), label


def main(argv: list[str] | None = None) -> int:
    import onnxruntime

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=authors.DEFAULT_MODELS)
    parser.add_argument("--keys", default="ck", help="ck, oulu or ck,oulu")
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--calls", type=int, default=200, help="calls per block at batch 1 (fewer at batch 256)")
    parser.add_argument("--batches", default="1,256")
    parser.add_argument("--throughput-threads", type=int, default=2, help="threads for batches above 1")
    parser.add_argument("--edgefer-backend", help="also time Recognizer.classify on this backend")
    parser.add_argument("--edgefer-precision", help="... asking it for this precision (e.g. bf16)")
    parser.add_argument("--edgefer-model", help="... on this artifact (default: the bundled model)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for key in args.keys.split(","):
        for batch_size in (int(b) for b in args.batches.split(",")):
            threads = 1 if batch_size == 1 else args.throughput_threads
            batch = rng.integers(0, 256, (batch_size, authors.SIDE, authors.SIDE)).astype(np.float32)
            tf_call, sess = tensorflow_call(args.models, key, batch, threads)
            contenders = {"tf": tf_call, "ort": onnxruntime_call(key, batch, threads)}
            label = ""
            if args.edgefer_backend:
                contenders["edgefer"], label = edgefer_call(key, batch, threads, args.edgefer_backend,
                                                            args.edgefer_precision, args.edgefer_model)
            medians = alternating_blocks(contenders, args.blocks, max(2, args.calls // batch_size))
            sess.close()
            per_image = {name: seconds * 1e3 / batch_size for name, seconds in medians.items()}
            tf_ms, ort_ms = per_image["tf"], per_image["ort"]
            row = {"model": f"microexpnet-{key}", "batch": batch_size, "threads": threads,
                   "tf_ms_per_image": tf_ms, "ort_ms_per_image": ort_ms, "speedup": tf_ms / ort_ms}
            text = (f"microexpnet-{key} batch {batch_size}, {threads} thread(s): authors' TensorFlow "
                    f"{tf_ms * 1e3:.1f} us/image, bare ONNX Runtime {ort_ms * 1e3:.1f} us/image: {tf_ms / ort_ms:.1f}x")
            if label:
                row.update(edgefer=label, edgefer_ms_per_image=per_image["edgefer"])
                text += f"; {label} {per_image['edgefer'] * 1e3:.1f} us/image: {tf_ms / per_image['edgefer']:.1f}x"
            rows.append(row)
            print(text + f" (medians of {args.blocks} alternating blocks)")
    if args.json:
        cpu = cpu_name()
        data = {"schema": SCHEMA, "cpu": cpu, "cpu_flags": cpu_features(), "host": platform.node(),
                "tensorflow": tf.__version__, "onnxruntime": onnxruntime.__version__,
                "tf_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", ""),
                "method": f"medians of {args.blocks} alternating blocks per contender, one process", "results": rows}
        args.json.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
