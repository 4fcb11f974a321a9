#!/usr/bin/env bash
# The device runtime on aarch64 (Raspberry Pi / Jetson class CPUs), proved under qemu-user emulation.
#
#   sudo tools/check_aarch64.sh [--root DIR] [--fresh]
#
# Builds (or reuses) a Debian trixie arm64 root with mmdebstrap, installs this tree's wheel there with no
# extras and then with [openvino], and runs tools/aarch64_checks.py inside it: the bundled models against the
# authors' reference logits (1e-4) on ONNX Runtime and OpenVINO, `edgefer predict` on the astronaut,
# `edgefer convert` refused cleanly (exit 5: the device side has no edgefer[train]), and `edgefer bench`
# with its timings labelled emulated. Prints one summary line; exits non-zero on any failure.
# Needs root, network to deb.debian.org and PyPI, and Debian's qemu-user-static, mmdebstrap, binfmt-support
# (installed here with apt-get when missing). About 10-15 minutes the first time; not part of .ci/run.
set -uo pipefail
cd "$(dirname "$0")/.."
TREE=$(pwd)
ROOT=${EDGEFER_ARM64_ROOT:-/var/tmp/edgefer-arm64/root}
FRESH=0
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT=$2; shift 2 ;;
        --fresh) FRESH=1; shift ;;
        -h|--help) sed -n 2,12p "$0"; exit 0 ;;
        *) echo "check_aarch64: unknown argument $1 (expected --root DIR or --fresh)" >&2; exit 2 ;;
    esac
done
LOG=${ROOT%/*}/check.log
mkdir -p "${ROOT%/*}"
: > "$LOG"
START=$(date +%s)

say() { echo "[check_aarch64 $(( $(date +%s) - START ))s] $*"; }
fail() { say "FAIL: $*"; echo "aarch64 check: FAILED ($*) after $(( $(date +%s) - START ))s; log: $LOG"; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (chroot, mmdebstrap)"

# --- host tools: Debian's qemu-user-static, mmdebstrap and binfmt-support ---
if ! command -v mmdebstrap >/dev/null || ! command -v qemu-aarch64-static >/dev/null; then
    say "installing qemu-user-static mmdebstrap binfmt-support"
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y qemu-user-static mmdebstrap binfmt-support; } \
        >>"$LOG" 2>&1 || fail "apt-get install qemu-user-static mmdebstrap binfmt-support"
fi
# binfmt_misc lets the kernel run arm64 binaries through qemu (mmdebstrap needs it for the package scripts).
[ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc >>"$LOG" 2>&1 \
    || fail "binfmt_misc is not mounted and cannot be mounted here (a container without the privilege): run on a host or a privileged container"
update-binfmts --enable qemu-aarch64 >>"$LOG" 2>&1 || true
grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null \
    || fail "qemu-aarch64 is not registered in binfmt_misc (update-binfmts --enable qemu-aarch64 failed; see $LOG)"

# --- the arm64 root ---
if [ "$FRESH" = 1 ] || [ ! -e "$ROOT/.edgefer-root-ready" ]; then
    say "building the Debian trixie arm64 root in $ROOT (mmdebstrap; ~5 min)"
    rm -rf "$ROOT"
    mmdebstrap --arch=arm64 --variant=apt --include=python3,python3-venv,python3-pip,ca-certificates \
        trixie "$ROOT" >>"$LOG" 2>&1 || fail "mmdebstrap of the arm64 root (see $LOG)"
    touch "$ROOT/.edgefer-root-ready"
else
    say "reusing the arm64 root in $ROOT"
fi
[ "$(chroot "$ROOT" uname -m 2>>"$LOG")" = aarch64 ] || fail "the arm64 root does not run (chroot uname -m is not aarch64)"
[ "${ROOT_ONLY:-0}" = 1 ] && { say "root ready"; exit 0; }
