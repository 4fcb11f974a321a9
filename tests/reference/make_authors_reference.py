"""Compute reference logits with the AUTHORS' OWN TensorFlow graph (not a rebuild of it).

This script is run by hand, once, with a separate TensorFlow virtual environment; TensorFlow is
*not* a dependency of edgefer and this file is not imported by the test suite. Its output,
``tests/reference/authors_reference.npz``, is what ``tests/runtime/test_authors_parity.py`` compares the
PyTorch / ONNX ports against (to 1e-4).

Setup and run (from the repository root)::

    python3 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu==2.21.0 numpy "opencv-python-headless<5"
    /tmp/tfenv/bin/python tests/reference/make_authors_reference.py \
        [--models CLONE/Models] \
        [--out tests/reference/authors_reference.npz] \
        [--dump-weights /tmp/authors_weights]

What it does, per model (CK and OuluCASIA, each in its own tf.Graph / Session):

* ``tf.compat.v1.train.import_meta_graph`` on ``<Models>/<name>/MicroExpNet_<name>.meta`` and
  restore of the checkpoint next to it with the saver stored in the graph;
* finds, by walking the graph (printed): the input placeholder (``[None, 7056]``, a flattened
  84x84 gray image, reshaped inside the graph to ``[-1, 84, 84, 1]``), the dropout keep-prob
  placeholder (fed 1.0 = inference) and the logits tensor (the fc2 ``Add`` that consumes ``bo``,
  i.e. the pre-softmax output);
* feeds a fixed batch of 84x84 float32 images in 0..255 (see ``build_inputs``).

The real face crop follows the authors' ``exampleUsage.py`` (github.com/cuguilke/microexpnet):
``cv2.imread`` (BGR) -> gray copy for detection -> Haar ``haarcascade_frontalface_default.xml``
``detectMultiScale(gray, 1.3, 5)`` -> first face ``img[y:y+h, x:x+w]`` of the BGR image (whole
image if none) -> ``cv2.resize(.., (256, 256))`` -> ``[32:256, 32:256]`` ->
``cv2.resize(.., (84, 84))`` -> ``cv2.cvtColor(.., BGR2GRAY)`` -> float32. All resizes use the
OpenCV default interpolation, ``INTER_LINEAR``.

The npz holds: ``inputs`` [N, 84, 84] float32, ``logits_ck`` and ``logits_oulu`` [N, 8] (as TF
returns them, float32), ``names`` [N] (what each input is), ``astronaut_box`` (x, y, w, h),
``astronaut_index`` (row of the face crop in ``inputs``), and the tensor names used.

``--dump-weights DIR`` also writes ``DIR/ck.npz`` and ``DIR/oulu.npz`` with the restored
variables wc1, bc1, wc2, bc2, wfc, bfc, wo, bo as float32 arrays in TF layout (HWIO kernels,
[in, out] dense matrices); the Adam slots are skipped.

The weights are the authors' (MIT licence): CLONE is a clone of https://github.com/cuguilke/microexpnet.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Plain Eigen kernels and quiet logs; set before TensorFlow is imported.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
DEFAULT_MODELS = REPO_ROOT.parent / "shared" / "authors-microexpnet" / "Models"
DEFAULT_OUT = HERE / "authors_reference.npz"
ASTRONAUT = REPO_ROOT / "tests" / "fixtures" / "astronaut.png"

MODELS = {"ck": ("CK", "MicroExpNet_CK"), "oulu": ("OuluCASIA", "MicroExpNet_OuluCASIA")}
VARIABLES = ("wc1", "bc1", "wc2", "bc2", "wfc", "bfc", "wo", "bo")
SIDE = 84
N_CLASSES = 8


# ----------------------------------------------------------------------------- inputs

def authors_face_crop(path: Path) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """The authors' exampleUsage.py segmentFace(): returns (84x84 float32 gray, box or None)."""
    img = cv2.imread(str(path))  # BGR, alpha dropped (IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"{path}: cannot read image")
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    cascade_path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
    cascade = cv2.CascadeClassifier(cascade_path)
    if cascade.empty():
        raise SystemExit("cannot load haarcascade_frontalface_default.xml from cv2.data.haarcascades")
    faces = cascade.detectMultiScale(gray, scaleFactor=1.3, minNeighbors=5)
    box = None
    if len(faces):
        x, y, w, h = (int(v) for v in faces[0])
        box = (x, y, w, h)
        img = img[y:y + h, x:x + w]
    img = cv2.resize(img, (256, 256))  # INTER_LINEAR (OpenCV default)
    img = img[32:256, 32:256]
    img = cv2.resize(img, (SIDE, SIDE))  # INTER_LINEAR
    img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return img.astype(np.float32), box


def build_inputs(astronaut: Path) -> tuple[np.ndarray, list[str], int, tuple[int, int, int, int]]:
    """Fixed batch: 12 seeded uniform-random images, structured patterns, the astronaut face."""
    images: list[np.ndarray] = []
    names: list[str] = []

    rng = np.random.default_rng(0)
    for i, img in enumerate(rng.uniform(0.0, 255.0, size=(12, SIDE, SIDE))):
        images.append(img)
        names.append(f"uniform_random_{i:02d}")

    ramp = np.linspace(0.0, 255.0, SIDE)
    images.append(np.tile(ramp, (SIDE, 1)))  # dark left -> bright right
    names.append("horizontal_gradient")
    images.append(np.tile(ramp[:, None], (1, SIDE)))  # dark top -> bright bottom
    names.append("vertical_gradient")
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    images.append(np.where(((yy // 7) + (xx // 7)) % 2 == 0, 255.0, 0.0))  # 7-px squares, 12x12
    names.append("checkerboard_7px")
    images.append(np.zeros((SIDE, SIDE)))
    names.append("all_zeros")
    images.append(np.full((SIDE, SIDE), 255.0))
    names.append("all_255")

    face, box = authors_face_crop(astronaut)
    if box is None:
        raise SystemExit(f"{astronaut}: the Haar cascade found no face; the reference needs one")
    astronaut_index = len(images)
    images.append(face)
    names.append("astronaut_face_crop")
    images.append(face[:, ::-1])
    names.append("astronaut_face_crop_mirrored")

    inputs = np.ascontiguousarray(np.stack(images), dtype=np.float32)
    assert inputs.shape[1:] == (SIDE, SIDE) and inputs.min() >= 0.0 and inputs.max() <= 255.0
    return inputs, names, astronaut_index, box


# ----------------------------------------------------------------------------- graph

def _ancestors(tensor: tf.Tensor) -> set[tf.Operation]:
    seen: set[tf.Operation] = set()
    stack = [tensor.op]
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return seen


def _find_logits(graph: tf.Graph) -> tf.Tensor:
    """The Add/BiasAdd that adds the output bias ``bo`` (through its read) to the fc2 MatMul."""
    bo = graph.get_operation_by_name("bo")
    reads = [c for out in bo.outputs for c in out.consumers() if c.type == "Identity"]
    candidates = [c for r in reads for c in r.outputs[0].consumers()
                  if c.type in ("Add", "AddV2", "BiasAdd")
                  and any(i.op.type == "MatMul" for i in c.inputs)]
    if len(candidates) != 1:
        raise SystemExit(f"expected one fc2 bias add consuming bo, found {[c.name for c in candidates]}")
    logits = candidates[0].outputs[0]
    if logits.shape.as_list()[-1] != N_CLASSES:
        raise SystemExit(f"logits {logits.name} have shape {logits.shape}, expected [None, {N_CLASSES}]")
    return logits


def _find_placeholders(graph: tf.Graph, logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor | None]:
    """Input = the placeholder feeding the first Conv2D; keep prob = any other one feeding logits."""
    ancestry = _ancestors(logits)
    placeholders = [op for op in ancestry if op.type == "Placeholder"]
    convs = [op for op in ancestry if op.type == "Conv2D"
             and any("wc1" in i.op.name for i in op.inputs)]
    if len(convs) != 1:
        raise SystemExit(f"expected one conv consuming wc1, found {[c.name for c in convs]}")
    conv_ancestry = _ancestors(convs[0].inputs[0])
    inputs = [op for op in placeholders if op in conv_ancestry]
    if len(inputs) != 1:
        raise SystemExit(f"expected one input placeholder, found {[op.name for op in inputs]}")
    others = [op for op in placeholders if op is not inputs[0]]
    if len(others) > 1:
        raise SystemExit(f"more than one extra placeholder feeds the logits: {[op.name for op in others]}")
    keep = None
    if others:
        keep = others[0].outputs[0]
        users = {c.name for c in keep.consumers()}
        if not any("dropout" in u for u in users):
            raise SystemExit(f"extra placeholder {keep.name} feeds {users}, not a dropout op")
    return inputs[0].outputs[0], keep


def run_model(models: Path, key: str, inputs: np.ndarray, dump_dir: Path | None) -> tuple[np.ndarray, dict]:
    folder, stem = MODELS[key]
    prefix = models / folder / stem
    meta = prefix.with_suffix(".meta")
    if not meta.is_file():
        raise SystemExit(f"{meta}: no such file (use --models)")
    graph = tf.Graph()
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    with graph.as_default(), tf.compat.v1.Session(graph=graph, config=config) as sess:
        saver = tf.compat.v1.train.import_meta_graph(str(meta), clear_devices=True)
        saver.restore(sess, str(prefix))
        logits = _find_logits(graph)
        x, keep = _find_placeholders(graph, logits)
        info = {"input": x.name, "input_shape": str(x.shape.as_list()),
                "keep_prob": keep.name if keep is not None else "",
                "logits": logits.name, "logits_shape": str(logits.shape.as_list())}
        print(f"[{key}] {meta}")
        print(f"[{key}]   input     {x.name} {x.shape.as_list()} {x.dtype.name}"
              f" -> {', '.join(c.name + ' ' + c.type for c in x.consumers())}")
        if keep is not None:
            users = [c for c in keep.consumers() if not c.name.startswith("gradients/")]
            print(f"[{key}]   keep_prob {keep.name} {keep.shape} {keep.dtype.name}"
                  f" -> {', '.join(c.name + ' ' + c.type for c in users)} (fed 1.0)")
        else:
            print(f"[{key}]   keep_prob none")
        print(f"[{key}]   logits    {logits.name} {logits.shape.as_list()}"
              f" = {' + '.join(i.name for i in logits.op.inputs)}")

        dims = x.shape.as_list()
        if len(dims) == 2:
            if dims[1] != SIDE * SIDE:
                raise SystemExit(f"flat input {x.name} has {dims[1]} features, expected {SIDE * SIDE}")
            batch = inputs.reshape(len(inputs), SIDE * SIDE)
        elif len(dims) == 4:
            batch = inputs[..., None]
        else:
            raise SystemExit(f"unexpected input shape {dims}")
        feed = {x: batch}
        if keep is not None:
            feed[keep] = 1.0
        out = sess.run(logits, feed_dict=feed)
        again = sess.run(logits, feed_dict=feed)
        if not np.array_equal(out, again):
            raise SystemExit(f"[{key}] two runs differ: is dropout really off?")
        one_by_one = np.concatenate([sess.run(logits, feed_dict={**feed, x: batch[i:i + 1]})
                                     for i in range(len(batch))])
        print(f"[{key}]   batch vs one-at-a-time max |diff| {np.abs(out - one_by_one).max():.3g}")

        if dump_dir is not None:
            by_name = {v.op.name: v for v in tf.compat.v1.global_variables()}
            weights = {name: np.asarray(sess.run(by_name[name]), dtype=np.float32) for name in VARIABLES}
            dump_dir.mkdir(parents=True, exist_ok=True)
            np.savez(dump_dir / f"{key}.npz", **weights)
            print(f"[{key}]   weights -> {dump_dir / (key + '.npz')}: "
                  + ", ".join(f"{n}{list(w.shape)}" for n, w in weights.items()))
    return out, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=DEFAULT_MODELS,
                        help=f"the authors' Models/ folder (default {DEFAULT_MODELS})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"npz to write (default {DEFAULT_OUT})")
    parser.add_argument("--dump-weights", type=Path, default=None, metavar="DIR",
                        help="also write DIR/ck.npz and DIR/oulu.npz with the checkpoint variables")
    parser.add_argument("--astronaut", type=Path, default=ASTRONAUT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    print(f"tensorflow {tf.__version__}, opencv {cv2.__version__}, numpy {np.__version__}")
    inputs, names, astronaut_index, box = build_inputs(args.astronaut)
    print(f"{len(inputs)} inputs; astronaut face box (x, y, w, h) = {box} -> row {astronaut_index}")

    logits_ck, info_ck = run_model(args.models, "ck", inputs, args.dump_weights)
    logits_oulu, info_oulu = run_model(args.models, "oulu", inputs, args.dump_weights)
    if info_ck != info_oulu:
        print(f"note: the two graphs use different tensors: {info_ck} vs {info_oulu}")

    labels = ["neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]
    for i, name in enumerate(names):
        ck, oulu = logits_ck[i], logits_oulu[i]
        print(f"  {i:2d} {name:30s} ck={labels[ck.argmax()]:9s} oulu={labels[oulu.argmax()]:9s}"
              f" max|logit| ck={np.abs(ck).max():7.3f} oulu={np.abs(oulu).max():7.3f}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        inputs=inputs,
        logits_ck=logits_ck,
        logits_oulu=logits_oulu,
        names=np.array(names),
        astronaut_box=np.array(box, dtype=np.int64),
        astronaut_index=np.array(astronaut_index, dtype=np.int64),
        input_tensor=np.array(info_ck["input"]),
        keep_prob_tensor=np.array(info_ck["keep_prob"]),
        logits_tensor=np.array(info_ck["logits"]),
        tensorflow_version=np.array(tf.__version__),
    )
    print(f"wrote {args.out} (logits dtype {logits_ck.dtype})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
