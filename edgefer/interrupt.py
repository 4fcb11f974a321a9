"""SIGTERM handled like Ctrl-C: the same clean-up runs, and the exit code says which signal it was.

``kill PID``, a container stop or a cluster scheduler send SIGTERM, not SIGINT. Python's default is to
die at once, skipping every ``finally``: a convert would leave its staging folder, a training run its
last minutes of work. The CLI installs ``raise_on_sigterm`` so that SIGTERM raises ``Terminated`` (a
KeyboardInterrupt: every handler written for Ctrl-C runs for it too) and the process exits with 143
(128 + 15) instead of 130. The training loop defers both signals to the end of the current step and
checkpoints first.
"""

from __future__ import annotations

import signal
import threading

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

_received: list[int] = []
_reported: list[bool] = []


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwinds like Ctrl-C (partial work removed or checkpointed), then exit 143."""


def note(signum: int) -> None:
    """Record that ``signum`` arrived (a deferred handler that does not raise calls this)."""
    _received.append(signum)


def reported() -> None:
    """A command said "edgefer: interrupted" itself; main() need not."""
    _reported.append(True)


def was_reported() -> bool:
    return bool(_reported)


def terminated() -> bool:
    """Whether SIGTERM arrived in this process."""
    return hasattr(signal, "SIGTERM") and signal.SIGTERM in _received


def exit_code() -> int:
    """143 after SIGTERM, else 130 (Ctrl-C)."""
    return EXIT_TERMINATED if terminated() else EXIT_INTERRUPTED


def raise_on_sigterm() -> None:
    """Make SIGTERM raise Terminated in the main thread (from the main thread only; elsewhere a no-op)."""
    if hasattr(signal, "SIGTERM") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise)


def _raise(signum: int, frame: object) -> None:
    note(signum)
    raise Terminated(f"terminated by signal {signum}")
