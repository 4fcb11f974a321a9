"""Files: atomic writing (a reader sees the old file or the complete new one, never a torn one), checksums,
the cache folder, the last line of a log."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success fsync it and rename it over ``target``.

    On any exception the temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a model file is as readable as any other
        fsync_file(tmp)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"))


def fsync_file(path: Path) -> None:
    """Flush a file's bytes to disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(directory: Path) -> None:
    """Persist renames in ``directory`` (best effort: not every OS lets a folder be fsynced)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def make_staging_dir(parent: Path, prefix: str) -> Path:
    """A new temp folder in ``parent`` named ``PREFIX<pid>-...``, after removing those that dead processes left.

    A ``kill -9`` skips every cleanup; the next run tidies up after it.
    """
    remove_stale_staging(parent, prefix)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))


def remove_stale_staging(parent: Path, prefix: str) -> None:
    """Delete ``parent/PREFIX<pid>-*`` folders whose process is gone."""
    for folder in Path(parent).glob(f"{prefix}*"):
        pid = folder.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # signal 0 is CTRL_C_EVENT there: never guess, keep the folder
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks (model files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir(*parts: str) -> Path:
    """edgefer's cache folder (``$XDG_CACHE_HOME/edgefer``, or ``~/.cache/edgefer`` when that is unset or empty)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base, "edgefer", *parts)


def last_line(path: str | os.PathLike, limit: int = 300) -> str:
    """The last non-empty line of a text file (a worker's log), or "" when there is none or it is unreadable."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


def csv_cell(value: object) -> object:
    """A value as a CSV cell: floats to 6 significant digits (not float32 noise like 0.09400000423192978),
    None and the tables' "-" as an empty cell; text made safe for a spreadsheet (``textsafe.csv_safe``:
    control characters escaped, formula prefixes neutralised)."""
    from edgefer.textsafe import csv_safe

    if value is None or value == "-":
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return csv_safe(value)
    return value


def check_output_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` if a file can be written there (missing folders are made when it is written): InputError
    naming ``what`` (e.g. "--json") when it is a folder or lies under a file, before any work is done."""
    from edgefer.errors import InputError

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {path}: is a folder; expected a file name")
    try:
        check_output_folder(path.parent)
    except InputError as err:
        raise InputError(f"{what} {path}: {err}") from None
    return path


def check_output_folder(path: str | os.PathLike) -> Path:
    """``path`` if it is, or can become, a folder: refused (InputError) when it is a file, or lies under one
    (``--out file/sub``), before any work is done. The nearest part of the path that exists decides."""
    from edgefer.errors import InputError

    path = Path(path)
    for part in (path, *path.parents):
        if part.is_dir():
            return path
        if part.exists() or part.is_symlink():
            problem = "exists and is not a folder" if part == path else f"cannot be a folder: {part} is a file"
            raise InputError(f"{path}: {problem}")
    return path
