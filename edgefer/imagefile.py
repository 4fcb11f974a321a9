"""Image files and encoded bytes -> 8-bit BGR, refused from the header when too big or not an image.

Only PNG, JPEG, BMP, TIFF and WebP are read. Their headers are parsed (edgefer.imageheader, the way
each decoder parses them) before OpenCV decodes anything, so a decompression bomb is refused without
allocating its pixels. The pixel cap defaults to Pillow's 89,478,485 (``MAX_IMAGE_PIXELS``); the
environment variable ``EDGEFER_MAX_IMAGE_PIXELS`` or ``Recognizer(max_pixels=...)`` changes it. OpenCV's
own ``OPENCV_IO_MAX_IMAGE_PIXELS`` is set from the cap when edgefer is imported (OpenCV reads it once,
when cv2 is loaded): a second wall, should a header ever be read differently by the decoder.

A file is refused before it is read when it is not a regular file (a FIFO, a device, a socket) or is
larger than ``EDGEFER_MAX_IMAGE_BYTES`` (default 256 MiB); its header is checked from its first 64 KiB
before the rest is read. An image whose data ends early is refused as truncated, also when it was
closed with a forged end marker: a JPEG on which libjpeg reports a premature end or corrupt data, or
whose scan holds fewer restart markers than its MCUs need (OpenCV would decode it half gray); a PNG
whose IDAT stream inflates to fewer rows than IHDR promises (libpng refuses it; edgefer says why).
Paths and bytes go through the same decoder, so EXIF orientation is applied to both alike.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgefer.errors import InputError, one_line
from edgefer.imageheader import FORMATS, AmbiguousHeader, HeaderError, ImageHeader, parse, png_data_problem, sniff
from edgefer.nativelog import native_stderr_captured, write_back

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS", "FORMATS", "IMAGE_SUFFIXES", "ImageHeader", "MAX_BYTES_ENV",
           "MAX_PIXELS_ENV", "check_pixel_count", "decode_image", "max_image_bytes", "max_image_pixels", "opencv",
           "read_header", "read_image"]

#: Pillow's default ``Image.MAX_IMAGE_PIXELS`` (1024**3 // 4 // 3).
DEFAULT_MAX_PIXELS = 89_478_485
MAX_PIXELS_ENV = "EDGEFER_MAX_IMAGE_PIXELS"
#: The largest image file read: 256 MiB (an uncompressed 8-bit RGBA BMP at the pixel cap is 358 MB).
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
MAX_BYTES_ENV = "EDGEFER_MAX_IMAGE_BYTES"
OPENCV_PIXELS_ENV = "OPENCV_IO_MAX_IMAGE_PIXELS"
#: What dataset and calibration folders are searched for: those formats, and PGM/PPM so that such a file
#: is refused by name (read_image does not take them) rather than skipped without a word.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})
#: How much of a file is read before its header is checked.
HEAD_BYTES = 64 * 1024
#: libjpeg's warnings that mean pixels were made up (the first is printed; the rest are counted).
_JPEG_WARNINGS = {"premature end": "truncated", "corrupt jpeg data": "corrupt"}


def max_image_pixels(override: int | None = None) -> int:
    """The pixel cap: ``override`` if given, else ``$EDGEFER_MAX_IMAGE_PIXELS``, else Pillow's default."""
    if override is not None:
        value, source = override, "max_pixels"
    else:
        text = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_PIXELS
        value, source = text, MAX_PIXELS_ENV
    try:
        cap = int(value)
    except (TypeError, ValueError):
        cap = 0
    if cap < 1:
        raise InputError(f"{source} must be a positive whole number of pixels, got {value!r}")
    return cap


def max_image_bytes() -> int:
    """The largest image file read: ``$EDGEFER_MAX_IMAGE_BYTES`` or 256 MiB."""
    text = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"{MAX_BYTES_ENV} must be a positive whole number of bytes, got {text!r}")
    return int(text)


def check_pixel_count(width: int, height: int, name: str, max_pixels: int | None = None,
                      error: type[InputError] = InputError) -> None:
    """Refuse an image of more than the cap's pixels, naming the size, the cap and how to raise it."""
    cap = max_image_pixels(max_pixels)
    if width * height > cap:
        raise error(f"{name}: {width}x{height} image ({width * height / 1e6:.1f} MP) exceeds the limit "
                         f"of {cap:,} pixels (set {MAX_PIXELS_ENV} or Recognizer(max_pixels=...) to raise it)")


def read_image(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as 8-bit BGR (EXIF orientation applied, alpha dropped, 16-bit scaled).

    The bytes are read by Python, so non-ASCII paths work on every platform.
    """
    path = Path(path)
    return decode_image(_read_bounded(path, max_pixels), str(path), max_pixels)


def _read_bounded(path: Path, max_pixels: int | None) -> bytes:
    """The file's bytes: refused unless a regular file under the size limit whose header is under the cap."""
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused by fstat below
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise InputError(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected an image file") from None
    except OSError as err:  # a socket cannot be opened at all
        with contextlib.suppress(OSError):
            mode = os.stat(path).st_mode
            if not stat.S_ISREG(mode):
                raise InputError(f"{path}: not a regular file ({_kind(mode)}), expected an image file") from None
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    info = os.fstat(fd)
    problem = (f"{path}: is a folder, expected an image file" if stat.S_ISDIR(info.st_mode) else
               f"{path}: not a regular file ({_kind(info.st_mode)}), expected an image file"
               if not stat.S_ISREG(info.st_mode) else None)
    if problem:
        os.close(fd)
        raise InputError(problem)
    with os.fdopen(fd, "rb") as handle:
        size = info.st_size
        limit = max_image_bytes()
        if size > limit:
            raise InputError(f"{path}: {size:,}-byte file exceeds the limit of {limit:,} bytes for an image "
                             f"(set {MAX_BYTES_ENV} to raise it)")
        try:
            head = handle.read(HEAD_BYTES)
            _check_early(head, str(path), max_pixels)
            data = head + handle.read(limit + 1 - len(head))
        except OSError as err:
            raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    if len(data) > limit:  # grew while being read
        raise InputError(f"{path}: file exceeds the limit of {limit:,} bytes for an image")
    return data


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def _check_early(head: bytes, name: str, max_pixels: int | None) -> None:
    """The pixel cap from the file's first bytes, when the size is there (a TIFF's may lie further on)."""
    try:
        header = parse(head, whole=False)
    except (HeaderError, AmbiguousHeader):
        return  # decided on the whole file
    _check_header_pixels(header, name, max_pixels)


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int | None = None) -> np.ndarray:
    """Encoded image bytes -> 8-bit BGR, after the header checks; ``name`` labels the errors."""
    if not data:
        raise InputError(f"{name}: empty file, expected an image ({FORMATS})")
    if len(data) > max_image_bytes():
        raise InputError(f"{name}: {len(data):,} bytes exceed the limit of {max_image_bytes():,} bytes for an "
                         f"image (set {MAX_BYTES_ENV} to raise it)")
    header = read_header(data, name)
    _check_header_pixels(header, name, max_pixels)
    if header.problem:
        raise InputError(f"{name}: {_problem(header.problem, header.format)}")
    return _decode(data, header, name)


def _problem(problem: str, format_name: str) -> str:
    return problem.replace(":", f" {format_name}:", 1)


def _check_header_pixels(header: ImageHeader, name: str, max_pixels: int | None) -> None:
    check_pixel_count(header.width, header.height, name, max_pixels)
    if header.extra_pixels > max_image_pixels(max_pixels):
        raise InputError(f"{name}: a {header.format} page or tile of {header.extra_pixels:,} pixels exceeds the "
                         f"limit of {max_image_pixels(max_pixels):,} pixels (set {MAX_PIXELS_ENV} to raise it)")


def _decode(data: bytes, header: ImageHeader, name: str) -> np.ndarray:
    cv2 = opencv()
    warnings: list[str] = []
    try:
        if header.format == "JPEG":
            with _native_stderr_captured(warnings):
                image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        else:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as err:
        reason = one_line(err, last=True)
        if "CV_IO_MAX_IMAGE" in reason:
            raise InputError(f"{name}: OpenCV's own limit refuses this {header.format} ({OPENCV_PIXELS_ENV}="
                             f"{os.environ.get(OPENCV_PIXELS_ENV, '?')}, fixed when cv2 was loaded; set "
                             f"{MAX_PIXELS_ENV} before starting to raise both)") from None
        raise InputError(f"{name}: cannot decode {header.format} ({reason})") from None
    for line in warnings:
        for words, kind in _JPEG_WARNINGS.items():
            if words in line.lower() and "extraneous bytes" not in line.lower():
                raise InputError(f"{name}: {kind} JPEG: libjpeg: {line.strip()} (the image would decode with "
                                 "made-up pixels)")
    if image is None:
        # libpng refuses an IDAT stream that ends early; say so (the inflate runs only for a refused file)
        problem = png_data_problem(data) if header.format == "PNG" else None
        if problem:
            raise InputError(f"{name}: {_problem(problem, header.format)}")
        raise InputError(f"{name}: corrupt or unsupported {header.format}, OpenCV could not decode it")
    return image


@contextlib.contextmanager
def _native_stderr_captured(lines: list[str]) -> Iterator[None]:
    """libjpeg's warnings (it prints them to file descriptor 2) meanwhile, as ``lines``; anything else that
    reached fd 2 (another thread's output) is written on to the real stderr afterwards."""
    captured: list[str] = []
    try:
        with native_stderr_captured(captured):
            yield
    finally:
        lines.extend(line.rstrip("\n") for line in captured if "JPEG" in line)
        write_back(line for line in captured if "JPEG" not in line)


def read_header(data: bytes, name: str = "<bytes>") -> ImageHeader:
    """Format and size from the first bytes; InputError for an unknown format, a broken or an ambiguous header."""
    format_name = sniff(data)
    if format_name is None:
        raise InputError(f"{name}: not a readable image, expected {FORMATS}")
    try:
        header = parse(data)
    except HeaderError:
        header = None
    except AmbiguousHeader as err:
        raise InputError(f"{name}: ambiguous {format_name} header, refused: {err}") from None
    if header is None or header.width < 1 or header.height < 1:
        raise InputError(f"{name}: broken or truncated {format_name} header")
    return header


@functools.cache
def opencv():
    """cv2, imported on first use, with its decoder warnings silenced."""
    set_opencv_pixel_limit()
    import cv2

    # Decoder warnings ("PNG input buffer is incomplete") would add lines to edgefer's own errors.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    return cv2


def set_opencv_pixel_limit() -> None:
    """Set ``OPENCV_IO_MAX_IMAGE_PIXELS`` from edgefer's cap, unless set already: OpenCV reads it once, when
    cv2 is loaded, so this runs when edgefer is imported (a cv2 imported earlier keeps its own 2^30)."""
    if "cv2" in sys.modules or OPENCV_PIXELS_ENV in os.environ:
        return
    with contextlib.suppress(InputError):  # a bad EDGEFER_MAX_IMAGE_PIXELS is reported where it is used
        os.environ[OPENCV_PIXELS_ENV] = str(max_image_pixels())
