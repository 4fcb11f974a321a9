"""The errors edgefer raises on purpose: each carries a one-line message naming the thing at fault.

Each class carries the CLI exit code it maps to (documented in the README):
0 ok, 1 internal error (a bug), 2 bad input or usage, 3 refused as unsafe, 4 a quality gate failed
(parity, benchmark validity), 5 backend or environment unavailable or mismatched, 130 interrupted,
143 terminated (SIGTERM).
"""


class EdgeferError(Exception):
    """Base class: the CLI prints the message on one line and exits with ``exit_code``."""

    exit_code = 2


class InputError(EdgeferError, ValueError):
    """An image, array or file given to edgefer is not what was expected."""


class InvalidFrameError(InputError):
    """An image array passed to the runtime has the wrong rank, dtype, channels or values."""


class ModelError(EdgeferError, ValueError):
    """A model name is unknown, or a model file is missing, broken or not of the expected kind."""


class UnsafeModelError(ModelError):
    """A model file was refused because loading it could run code or read outside its folder."""

    exit_code = 3


class QualityError(EdgeferError, RuntimeError):
    """A check on the results failed: a parity gate, or a benchmark that did not meet its minimums."""

    exit_code = 4


class BackendUnavailable(EdgeferError, RuntimeError):
    """The runtime asked for (OpenVINO, TensorRT, a CUDA device...) is not installed or not usable here."""

    exit_code = 5


class FallbackRefused(BackendUnavailable):
    """A GPU backend would run on the CPU instead (its provider is missing or was dropped): refused, since
    its figures would be the CPU's under the GPU's name (``allow_fallback`` runs it on the CPU, labelled)."""


class NothingMeasured(EdgeferError, RuntimeError):
    """A benchmark ran, but not one of its cells could be measured (the records say why)."""

    exit_code = 1


class BackendClosed(EdgeferError, RuntimeError):
    """A backend was used after ``close()``: the same error from every backend."""


def one_line(err: object, limit: int = 300, *, last: bool = False, typed: bool = False) -> str:
    """A message fit for a one-line error: the first (``last``: the last, where OpenVINO puts the reason after
    its C++ source locations) non-empty line of ``err``, whitespace collapsed, at most ``limit`` characters;
    ``typed`` puts the exception's type in front. An empty message gives the exception's type."""
    lines = [" ".join(line.split()) for line in str(err).splitlines()]
    lines = [line for line in lines if line]
    name = type(err).__name__ if isinstance(err, BaseException) else ""
    if not lines:
        return name or "no details"
    text = (lines[-1] if last else lines[0])[:limit]
    return f"{name}: {text}" if typed and name else text
