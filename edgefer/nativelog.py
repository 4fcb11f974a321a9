"""What native libraries print straight to file descriptor 2: filtered of known noise, or silenced.

ONNX Runtime's bundled cpuinfo, and ONNX Runtime about it, write lines such as "Error in cpuinfo: ...",
"onnxruntime cpuid_info warning: Unknown CPU vendor" or "onnxruntime warning: cpuinfo_initialize failed"
when they cannot read /sys or /proc (containers, qemu-user on aarch64), although inference is unaffected.
Python's logging never sees them, so they are caught at the file-descriptor level while ONNX Runtime is
imported and a session is made, and every other line is written back to stderr afterwards: real errors
still show.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator

#: Lines known to be noise: cpuinfo's complaints about /proc and /sys it cannot parse, ONNX Runtime's about
#: cpuinfo (seen under qemu-user on aarch64: the CPU vendor unknown, cpuinfo_initialize failed), and OpenVINO's
#: ARM plugin (oneDNN's xbyak_aarch64) missing the CPU's MIDR_EL1 register file in /sys.
CPUINFO_NOISE = re.compile(r"^((Error|Warning) in cpuinfo: |onnxruntime cpuid_info warning: "
                           r"|onnxruntime warning: cpuinfo_initialize failed"
                           r"|\S*xbyak_aarch64\S*, \d+: Can't open MIDR_EL1 sysfs entry)")

_LOCK = threading.RLock()  # fd 2 is process-wide: one capture at a time, nested ones inside it


@contextlib.contextmanager
def native_stderr_captured(lines: list[str]) -> Iterator[None]:
    """What C code writes to file descriptor 2 meanwhile, appended to ``lines`` (each with its newline).
    fd 2 belongs to the process: captures take turns (one lock for every redirection here), nested ones
    inside the outer one."""
    with _LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        with _sink() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                lines.extend(sink.read().decode("utf-8", errors="replace").splitlines(keepends=True))


@contextlib.contextmanager
def native_stderr_filtered(noise: re.Pattern[str] = CPUINFO_NOISE) -> Iterator[None]:
    """Capture fd 2 meanwhile; afterwards write back every captured line that ``noise`` does not match."""
    lines: list[str] = []
    try:
        with native_stderr_captured(lines):
            yield
    finally:
        write_back(line for line in lines if not noise.match(line))


def write_back(lines: Iterable[str]) -> None:
    """Captured lines that were not ours to swallow, on to the real stderr."""
    kept = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    if kept:
        sys.stderr.write(kept)
        sys.stderr.flush()


def _sink():
    """An anonymous file: in memory where the OS offers one."""
    if hasattr(os, "memfd_create"):
        return os.fdopen(os.memfd_create("edgefer-stderr"), "w+b")
    return tempfile.TemporaryFile()


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send what C libraries print straight to file descriptor 2 (libpng's "libpng error: ...", FFmpeg's
    "moov atom not found") to /dev/null meanwhile: edgefer's own one-line error says what went wrong."""
    with _LOCK:
        try:
            sys.stderr.flush()
            saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        except OSError:  # no file descriptor 2 to redirect
            yield
            return
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
