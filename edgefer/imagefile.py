"""Image files and encoded bytes -> 8-bit BGR, refused from the header when too big or not an image.

Only PNG, JPEG, BMP, TIFF and WebP are read. Their headers are parsed here (a few dozen bytes)
before OpenCV decodes anything, so a decompression bomb is refused without allocating its pixels.
The pixel cap defaults to Pillow's 89,478,485 (``MAX_IMAGE_PIXELS``); the environment variable
``EDGEFER_MAX_IMAGE_PIXELS`` or ``Recognizer(max_pixels=...)`` changes it. A JPEG whose data ends
before its end-of-image marker is refused as truncated (some OpenCV builds decode it half gray).
Paths and bytes go through the same decoder, so EXIF orientation is applied to both alike.
"""

from __future__ import annotations

import functools
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefer.errors import InputError, one_line

#: Pillow's default ``Image.MAX_IMAGE_PIXELS`` (1024**3 // 4 // 3).
DEFAULT_MAX_PIXELS = 89_478_485
MAX_PIXELS_ENV = "EDGEFER_MAX_IMAGE_PIXELS"
FORMATS = "PNG, JPEG, BMP, TIFF or WebP"
#: What dataset and calibration folders are searched for: those formats, and PGM/PPM so that such a file
#: is refused by name (read_image does not take them) rather than skipped without a word.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_SOS, _JPEG_EOI = 0xDA, b"\xff\xd9"
_JPEG_CUT = "truncated: the data ends before the end-of-image marker"


@dataclass(frozen=True)
class ImageHeader:
    """What an encoded image says about itself before decoding."""

    format: str
    width: int
    height: int
    #: Why the data cannot be a whole image ("truncated: ...", "corrupt: ..."), or None.
    problem: str | None = None


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
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an image file")
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    return decode_image(data, str(path), max_pixels)


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int | None = None) -> np.ndarray:
    """Encoded image bytes -> 8-bit BGR, after the header checks; ``name`` labels the errors."""
    if not data:
        raise InputError(f"{name}: empty file, expected an image ({FORMATS})")
    header = read_header(data, name)
    check_pixel_count(header.width, header.height, name, max_pixels)
    if header.problem:
        raise InputError(f"{name}: {header.problem.replace(':', f' {header.format}:', 1)}")
    cv2 = opencv()
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as err:
        raise InputError(f"{name}: cannot decode {header.format} ({one_line(err, last=True)})") from None
    if image is None:
        raise InputError(f"{name}: corrupt or unsupported {header.format}, OpenCV could not decode it")
    return image


def read_header(data: bytes, name: str = "<bytes>") -> ImageHeader:
    """Format and size from the first bytes; InputError for an unknown format or a broken header."""
    match = next((entry for entry in _PARSERS if entry[1](data)), None)
    if match is None:
        raise InputError(f"{name}: not a readable image, expected {FORMATS}")
    format_name, _, parse = match
    try:
        header = parse(data)
    except (IndexError, ValueError):
        header = None
    if header is None or header.width < 1 or header.height < 1:
        raise InputError(f"{name}: broken or truncated {format_name} header")
    return header


def _png(data: bytes) -> ImageHeader | None:
    if data[12:16] != b"IHDR":
        return None
    return ImageHeader("PNG", _u32(data, 16, "big"), _u32(data, 20, "big"), _png_problem(data))


def _png_problem(data: bytes) -> str | None:
    """Walk the chunks to IEND checking each CRC: libpng would print its own complaint to stderr."""
    pos = 8
    while pos + 12 <= len(data):
        length, kind = _u32(data, pos, "big"), data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > len(data):
            break
        if zlib.crc32(data[pos + 4:end - 4]) != _u32(data, end - 4, "big"):
            return f"corrupt: CRC mismatch in the {kind.decode('latin-1')!r} chunk at byte {pos}"
        if kind == b"IEND":
            return None
        pos = end
    return "truncated: the data ends before the IEND chunk"


def _jpeg(data: bytes) -> ImageHeader | None:
    """Walk the marker segments to the frame header (size) and the first scan (completeness)."""
    pos, size = 2, None
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker in _JPEG_SOF:
            size = (_u16(data, pos + 7, "big"), _u16(data, pos + 5, "big"))
        if marker == _JPEG_SOS:
            if size is None:
                return None
            # Entropy-coded data never holds FF D9 (FF is stuffed), so an EOI after the scan ends the image.
            return ImageHeader("JPEG", *size, None if data.rfind(_JPEG_EOI) > pos else _JPEG_CUT)
        pos += 2 + _u16(data, pos + 2, "big")
    return ImageHeader("JPEG", *size, _JPEG_CUT) if size else None


def _bmp(data: bytes) -> ImageHeader:
    if _u32(data, 14, "little") == 12:  # OS/2 BITMAPCOREHEADER
        return ImageHeader("BMP", _u16(data, 18, "little"), _u16(data, 20, "little"))
    width = int.from_bytes(_slice(data, 18, 4), "little", signed=True)
    height = int.from_bytes(_slice(data, 22, 4), "little", signed=True)
    return ImageHeader("BMP", width, abs(height))


def _tiff(data: bytes) -> ImageHeader | None:
    """Width and length tags of the first image directory (the page OpenCV decodes)."""
    order = "little" if data[:2] == b"II" else "big"
    ifd = _u32(data, 4, order)
    found = {}
    for index in range(_u16(data, ifd, order)):
        entry = ifd + 2 + 12 * index
        tag, kind = _u16(data, entry, order), _u16(data, entry + 2, order)
        if tag in (256, 257):
            found[tag] = _u16(data, entry + 8, order) if kind == 3 else _u32(data, entry + 8, order)
    if len(found) != 2:
        return None
    return ImageHeader("TIFF", found[256], found[257])


def _webp(data: bytes) -> ImageHeader | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        return ImageHeader("WebP", _u16(data, 26, "little") & 0x3FFF, _u16(data, 28, "little") & 0x3FFF)
    if chunk == b"VP8L":
        bits = _u32(data, 21, "little")
        return ImageHeader("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        return ImageHeader("WebP", int.from_bytes(_slice(data, 24, 3), "little") + 1,
                           int.from_bytes(_slice(data, 27, 3), "little") + 1)
    return None


def _slice(data: bytes, offset: int, length: int) -> bytes:
    part = data[offset:offset + length]
    if len(part) != length:
        raise IndexError("header cut short")
    return part


def _u16(data: bytes, offset: int, order: str) -> int:
    return int.from_bytes(_slice(data, offset, 2), order)


def _u32(data: bytes, offset: int, order: str) -> int:
    return int.from_bytes(_slice(data, offset, 4), order)


_PARSERS = (
    ("PNG", lambda data: data.startswith(b"\x89PNG\r\n\x1a\n"), _png),
    ("JPEG", lambda data: data.startswith(b"\xff\xd8"), _jpeg),
    ("BMP", lambda data: data.startswith(b"BM"), _bmp),
    ("TIFF", lambda data: data.startswith((b"II*\x00", b"MM\x00*")), _tiff),
    ("WebP", lambda data: data.startswith(b"RIFF") and data[8:12] == b"WEBP", _webp),
)


@functools.cache
def opencv():
    """cv2, imported on first use, with its decoder warnings silenced."""
    import cv2

    # Decoder warnings ("PNG input buffer is incomplete") would add lines to edgefer's own errors.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    return cv2
