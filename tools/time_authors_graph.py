"""Time the authors' TensorFlow MicroExpNet graph at batch 1, one thread, beside a bare ONNX Runtime session.

The speed-up figure of `edgefer bench` divides by the authors' graph; this measures that graph on the
machine at hand so both sides come from one run. Needs tensorflow (not an edgefer dependency) and
onnxruntime in the same environment:

    python -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu onnxruntime opencv-python-headless"<5"
    /tmp/tfenv/bin/python tools/time_authors_graph.py [--models ../shared/authors-microexpnet/Models]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests" / "reference"))

import make_authors_reference as authors  # noqa: E402  (sets TF's thread and log settings first)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ONNX = REPO_ROOT / "edgefer" / "models" / "microexpnet-{key}.onnx"


def median_us(call, iterations: int, warmup: int) -> float:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return float(np.median(samples) * 1e6)


def time_tensorflow(models: Path, key: str, crop: np.ndarray, iterations: int, warmup: int) -> float:
    folder, stem = authors.MODELS[key]
    prefix = models / folder / stem
    graph = tf.Graph()
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    with graph.as_default(), tf.compat.v1.Session(graph=graph, config=config) as sess:
        tf.compat.v1.train.import_meta_graph(str(prefix.with_suffix(".meta")), clear_devices=True).restore(
            sess, str(prefix))
        logits = authors._find_logits(graph)
        x, keep = authors._find_placeholders(graph, logits)
        feed = {x: crop.reshape(1, -1) if len(x.shape) == 2 else crop[None, ..., None]}
        if keep is not None:
            feed[keep] = 1.0
        return median_us(lambda: sess.run(logits, feed_dict=feed), iterations, warmup)


def time_onnxruntime(key: str, crop: np.ndarray, iterations: int, warmup: int) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(ONNX).format(key=key), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: crop[None, None]}
    return median_us(lambda: session.run(None, feed), iterations, warmup)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=authors.DEFAULT_MODELS)
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args(argv)
    crop = np.random.default_rng(0).integers(0, 256, (authors.SIDE, authors.SIDE)).astype(np.float32)
    for key in authors.MODELS:
        tf_us = time_tensorflow(args.models, key, crop, args.iterations, args.warmup)
        ort_us = time_onnxruntime(key, crop, args.iterations, args.warmup)
        print(f"microexpnet-{key}: authors' TensorFlow {tf_us:.1f} us, bare ONNX Runtime {ort_us:.1f} us "
              f"(median, batch 1, 1 thread): {tf_us / ort_us:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
