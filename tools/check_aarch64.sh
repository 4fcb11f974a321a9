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

# --- what goes into the root: this tree's wheel, the authors' reference, the astronaut, the checks ---
WORK=/opt/edgefer-check  # inside the root
HOST_WORK=$ROOT$WORK
rm -rf "$HOST_WORK/dist" "$HOST_WORK/out"
mkdir -p "$HOST_WORK/dist" "$HOST_WORK/out"
STAGE=$(mktemp -d)
if git rev-parse --git-dir >/dev/null 2>&1; then  # tracked and untracked-not-ignored files: no .venv, no build/
    git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$STAGE"
else
    tar --exclude=./.venv --exclude=./.git --exclude=./build -cf - . | tar -xf - -C "$STAGE"
fi
say "building the wheel"
"${PYTHON:-python3}" -m pip wheel -q --no-deps -w "$HOST_WORK/dist" "$STAGE" >>"$LOG" 2>&1 || fail "building the wheel (see $LOG)"
rm -rf "$STAGE"
WHEEL=$(cd "$HOST_WORK/dist" && ls edgefer-*.whl | head -1)
cp tests/reference/authors_reference.npz tests/fixtures/astronaut.png tools/aarch64_checks.py "$HOST_WORK/"
# Trap 1: pip in the root must trust what the host trusts (a proxy's CA as well as the public ones).
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/edgefer-host-ca.crt"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true

# Trap 2: under qemu-user the root's /proc/cpuinfo is the x86 host's. ONNX Runtime's cpuinfo then segfaults on
# import as soon as /sys/devices/system/cpu exists (the issue's "/sys bind-mounted" trap), while OpenVINO's ARM
# CPU plugin segfaults in compile_model without it ("hwloc/linux: failed to find sysfs cpu topology directory").
# Both run when the root sees the host's CPU sysfs and an aarch64 /proc/cpuinfo for the same CPUs (a Neoverse-N1
# description, bind-mounted over /proc/cpuinfo). Nothing else of /sys is mounted.
FAKE_CPUINFO=${ROOT%/*}/cpuinfo-aarch64
: > "$FAKE_CPUINFO"
IFS=- read -r FIRST_CPU LAST_CPU < /sys/devices/system/cpu/present
for cpu in $(seq "$FIRST_CPU" "${LAST_CPU:-$FIRST_CPU}"); do
    printf 'processor\t: %d\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n' "$cpu" >>"$FAKE_CPUINFO"
done
cleanup() {
    for m in proc/cpuinfo sys/devices/system/cpu dev proc; do umount "$ROOT/$m" 2>/dev/null; done
}
trap cleanup EXIT
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc" || fail "mounting /proc in the root"
mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev" || fail "bind-mounting /dev in the root"
mkdir -p "$ROOT/sys/devices/system/cpu"
mountpoint -q "$ROOT/sys/devices/system/cpu" || mount --bind /sys/devices/system/cpu "$ROOT/sys/devices/system/cpu" \
    || fail "bind-mounting /sys/devices/system/cpu in the root"
mount --bind "$FAKE_CPUINFO" "$ROOT/proc/cpuinfo" || fail "bind-mounting an aarch64 /proc/cpuinfo in the root"
# The root no longer looks emulated from inside (its /proc/cpuinfo is an Arm one): say so explicitly.
EMULATED="qemu-user: aarch64 on an x86-64 host (tools/check_aarch64.sh)"

# The host's own predict on the astronaut, for the root's to match (when this host runs edgefer).
EXPECT=()
if "${PYTHON:-python3}" -m edgefer predict --json tests/fixtures/astronaut.png >"$HOST_WORK/expected-predict.json" \
        2>>"$LOG"; then
    EXPECT=(--expect "$WORK/expected-predict.json")
else
    say "this host's ${PYTHON:-python3} does not run edgefer: the predict check only asks for one face"
fi

inroot() {
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/edgefer-host-ca.crt SSL_CERT_FILE=/etc/ssl/certs/edgefer-host-ca.crt \
        EDGEFER_EMULATED="$EMULATED" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 PYTHONUNBUFFERED=1 \
        ${HTTPS_PROXY:+HTTPS_PROXY=$HTTPS_PROXY} ${HTTP_PROXY:+HTTP_PROXY=$HTTP_PROXY} \
        ${https_proxy:+https_proxy=$https_proxy} ${http_proxy:+http_proxy=$http_proxy} "$@"
}

# The aarch64 wheels are fetched by the host's pip (fast, native), then installed offline in the root:
# pip under qemu reads so slowly that the connection for a large wheel can be reset (seen for numpy).
PYVER=$(inroot python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>>"$LOG")
PLATFORMS=(--platform manylinux2014_aarch64 --platform linux_aarch64)
for n in $(seq 17 41); do PLATFORMS+=(--platform "manylinux_2_${n}_aarch64"); done
WHEELS=$WORK/wheels
say "downloading the aarch64 wheels for Python $PYVER on the host"
if "${PYTHON:-python3}" -m pip download -q --only-binary=:all: --implementation cp --python-version "$PYVER" \
        "${PLATFORMS[@]}" -d "$ROOT$WHEELS" "$HOST_WORK/dist/$WHEEL[openvino]" >>"$LOG" 2>&1; then
    OFFLINE=(--no-index --find-links "$WHEELS")
else
    say "the host could not download them; pip in the root will (slower)"
    OFFLINE=()
fi

RESULTS=$HOST_WORK/out/results.txt
: > "$RESULTS"
stage() {  # stage NAME EXTRA: a fresh venv, the wheel with EXTRA, then aarch64_checks.py NAME
    local name=$1 extra=$2 venv=$WORK/venv-$1
    say "$name: pip install $WHEEL$extra under emulation"
    # Debian's pip from the system site (no ensurepip) and no .pyc compiling: both are minutes under qemu.
    inroot python3 -m venv --clear --without-pip --system-site-packages "$venv" >>"$LOG" 2>&1 \
        || { echo "FAIL $name venv: python3 -m venv failed" >>"$RESULTS"; return; }
    if ! inroot "$venv/bin/python" -m pip install --no-compile --cache-dir "$WORK/pip-cache" "${OFFLINE[@]}" \
            "$WORK/dist/$WHEEL$extra" >>"$LOG" 2>&1; then
        echo "FAIL $name install: pip install $WHEEL$extra failed (see $LOG)" >>"$RESULTS"
        return
    fi
    inroot "$venv/bin/python" -c "import sys, numpy, onnxruntime, cv2; print('versions: python', sys.version.split()[0], \
'numpy', numpy.__version__, 'onnxruntime', onnxruntime.__version__, 'opencv', cv2.__version__)" 2>>"$LOG" | tee -a "$LOG"
    say "$name: checks"
    local stage_out=$HOST_WORK/out/$name.txt
    inroot "$venv/bin/python" "$WORK/aarch64_checks.py" "$name" --reference "$WORK/authors_reference.npz" \
        --image "$WORK/astronaut.png" --out "$WORK/out/$name" "${EXPECT[@]}" 2>>"$LOG" | tee -a "$LOG" "$stage_out"
    local rc=${PIPESTATUS[0]}
    cat "$stage_out" >>"$RESULTS"
    [ "$rc" = 0 ] || grep -q "^FAIL" "$stage_out" \
        || echo "FAIL $name checks: exit $rc before reporting a failure (a crash; see $LOG)" | tee -a "$RESULTS"
}
stage plain ""
stage openvino "[openvino]"

PASSED=$(grep -c "^ok" "$RESULTS")
FAILED=$(grep -c "^FAIL" "$RESULTS")
SECONDS_TAKEN=$(( $(date +%s) - START ))
BENCH=$(grep "edgefer bench" "$RESULTS" | sed 's/.*: exit [0-9]*, //')
if [ "$FAILED" = 0 ] && [ "$PASSED" -gt 0 ]; then
    echo "aarch64 check: PASSED $PASSED/$PASSED checks (Debian trixie arm64 under qemu-user, wheel $WHEEL, no extras and [openvino]; bench $BENCH) in ${SECONDS_TAKEN}s"
    exit 0
fi
echo "aarch64 check: FAILED $FAILED of $((PASSED + FAILED)) checks ($(grep "^FAIL" "$RESULTS" | cut -d: -f1 | sed 's/^FAIL //' | paste -sd, -)) in ${SECONDS_TAKEN}s; log: $LOG"
exit 1
