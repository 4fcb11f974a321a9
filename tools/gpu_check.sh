#!/usr/bin/env bash
# The first GPU run, in one command: on a fresh NVIDIA machine holding only this working tree (PyTorch with
# CUDA and onnxruntime installed, TensorRT maybe not, no network), in under 8 minutes:
#   1. make edgefer importable from the tree (pip install --no-deps --no-build-isolation -e ., else a
#      symlinked package on PYTHONPATH: no network needed either way);
#   2. pytest -m gpu;
#   3. edgefer bench on the paper's five models for torch-cuda (eager and CUDA graph), onnxruntime-cuda and
#      tensorrt (where they are importable) at batch 1 and 256, writing the JSON;
#   4. edgefer report: the paper's table with our GPU columns beside its GTX1050 and K40 ones;
#   5. what could not run, and why.
#
#   tools/gpu_check.sh [OUT_DIR]          (default: gpu-check/; PYTHON=... picks the interpreter)
#   GPU_CHECK_MODELS=microexpnet tools/gpu_check.sh     a quicker run on one model
# Each step has its own time budget inside the 8 minutes; a step that overruns is stopped and reported.
set -uo pipefail
cd "$(dirname "$0")/.."
TREE=$(pwd)
OUT=${1:-gpu-check}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
TOTAL=${GPU_CHECK_SECONDS:-470}
MODELS=${GPU_CHECK_MODELS:-inception-v3,p12-m,p12-s,p12-xs,microexpnet}
START=$(date +%s)
NOTES=$OUT/could-not-run.txt
: > "$NOTES"
STATUS=0

left() { echo $(( TOTAL - ($(date +%s) - START) )); }
note() { echo "- $*" | tee -a "$NOTES"; }
step() {  # step NAME SECONDS LOG command...: runs with min(SECONDS, time left); logs to $OUT/LOG
    local name=$1 budget=$2 log=$OUT/$3
    shift 3
    local remaining
    remaining=$(left)
    [ "$budget" -gt "$remaining" ] && budget=$remaining
    if [ "$budget" -lt 5 ]; then
        note "$name: not run (the 8-minute budget is spent)"
        STATUS=1
        return 1
    fi
    echo "== $name (budget ${budget}s, $(left)s left)"
    timeout --kill-after=10 "$budget" "$@" >"$log" 2>&1
    local rc=$?
    tail -n 25 "$log"
    if [ $rc = 124 ] || [ $rc = 137 ]; then
        note "$name: stopped after its ${budget}s budget (see $(basename "$log"))"
    elif [ $rc != 0 ]; then
        note "$name: exit $rc (see $(basename "$log"))"
    fi
    return $rc
}

# --- 1. edgefer from this tree, without the network ---
EDGEFER=("$PY" -m edgefer)
if step "install edgefer (editable, no deps, no build isolation)" 60 install.log \
        "$PY" -m pip install --no-deps --no-build-isolation -e "$TREE"; then
    echo "edgefer installed from $TREE"
else
    # The stages install as edgefer.train / .convert / .bench from top-level folders: mirror that with links.
    SHIM=$OUT/pythonpath
    rm -rf "$SHIM" && mkdir -p "$SHIM/edgefer"
    for entry in "$TREE"/edgefer/*; do ln -s "$entry" "$SHIM/edgefer/"; done
    ln -s "$TREE/train" "$SHIM/edgefer/train"
    ln -s "$TREE/convert" "$SHIM/edgefer/convert"
    ln -s "$TREE/bench" "$SHIM/edgefer/bench"
    export PYTHONPATH=$SHIM${PYTHONPATH:+:$PYTHONPATH}
    note "pip install -e failed; running edgefer from $SHIM on PYTHONPATH instead"
fi
"$PY" -c "import edgefer, edgefer.bench, edgefer.convert, edgefer.train" 2>>"$OUT/install.log" \
    || { note "edgefer does not import (see install.log): nothing else can run"; exit 1; }

step "edgefer info" 40 info.log "${EDGEFER[@]}" info || STATUS=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$OUT/nvidia-smi.txt" 2>&1 \
    || note "nvidia-smi: not available"

# --- 2. the gpu tests ---
step "pytest -m gpu" 150 pytest-gpu.log "$PY" -m pytest -q -m gpu -p no:cacheprovider tests \
    || STATUS=1
grep -q "skipped" "$OUT/pytest-gpu.log" && note "pytest -m gpu skipped some: $(tail -n 1 "$OUT/pytest-gpu.log")" \
    && grep "^SKIPPED" "$OUT/pytest-gpu.log" | sed 's/^/  /' | cut -c1-220 >>"$NOTES"

# --- 3. the bench: every GPU backend this machine can import ---
BACKENDS="torch-cuda,torch-cuda-graph"
"$PY" - <<'PY' >"$OUT/backends.txt" 2>>"$OUT/info.log"
from edgefer.sysinfo import detect
for b in detect(include_torch=False).backends:
    print(b.name, "ok" if b.available else "no", " ".join(b.devices), "|", b.reason or "")
PY
if grep -q "^onnxruntime ok .*CUDAExecutionProvider" "$OUT/backends.txt"; then
    BACKENDS="$BACKENDS,onnxruntime-cuda"
else
    note "onnxruntime-cuda: this onnxruntime has no CUDAExecutionProvider ($(grep ^onnxruntime "$OUT/backends.txt" | cut -c1-200)); pip install onnxruntime-gpu where there is a network"
fi
if grep -q "^tensorrt ok" "$OUT/backends.txt"; then
    BACKENDS="$BACKENDS,tensorrt"
else
    note "tensorrt: $(grep ^tensorrt "$OUT/backends.txt" | sed 's/.*| //' | cut -c1-200)"
fi
BENCH_SECONDS=$(( $(left) - 40 ))
step "edgefer bench ($MODELS; $BACKENDS; batch 1,256)" "$BENCH_SECONDS" bench.log \
    "${EDGEFER[@]}" bench --models "$MODELS" --backends "$BACKENDS" --batch 1,256 --duration 0.5 --min-iters 100 \
    --max-seconds 5 --timeout 60 --json "$OUT/bench-gpu.json" --work "$OUT/work" || STATUS=1

# --- 4. the paper's table with our GPU columns ---
if [ -s "$OUT/bench-gpu.json" ]; then
    step "edgefer report" 30 report.log "${EDGEFER[@]}" report "$OUT/bench-gpu.json" --out "$OUT/report" --no-plot \
        || STATUS=1
    "$PY" - "$OUT/bench-gpu.json" <<'PY' | tee -a "$NOTES"
import json, sys
records = json.load(open(sys.argv[1]))["records"]
for r in records:
    if r["status"] != "ok":
        print(f"- {r['model']} {r['backend']} {r['precision']} batch {r['batch']}: {r['status']}: {r.get('reason', '')[:200]}")
PY
else
    note "edgefer bench wrote no JSON: no table"
    STATUS=1
fi

# --- 5. summary ---
echo
echo "== could not run, and why ($OUT/could-not-run.txt):"
[ -s "$NOTES" ] && cat "$NOTES" || echo "(everything ran)"
echo "gpu check: $([ $STATUS = 0 ] && echo PASSED || echo 'FINISHED WITH PROBLEMS') in $(( $(date +%s) - START ))s;" \
     "JSON $OUT/bench-gpu.json, table $OUT/report/report.md, logs in $OUT"
exit $STATUS
