"""What an encoded image says about itself, parsed the way its decoder parses it, before anything is decoded.

The pixel cap is only as good as the size it is checked against, so each format is read as OpenCV's
decoder (libpng, libjpeg, libtiff, libwebp, OpenCV's BMP reader) reads it, and a header that two
readers could take two ways is refused rather than guessed at:

- PNG: IHDR must be the first chunk and the only one; every chunk's CRC must hold; an APNG frame
  (fcTL) must lie inside the canvas;
- JPEG: the marker segments are walked to the end-of-image marker; a second frame header (SOF) is
  refused (libjpeg refuses it too), and so is a scan with fewer restart markers than its MCUs need;
- TIFF: every image directory is read (loops and over 1,024 directories refused); a tag that appears
  twice in a directory, or a width, length or tile size that is not one SHORT or LONG, is refused;
  the cap then holds for the largest page and tile;
- WebP: the VP8X canvas (what libwebp allocates), or the VP8/VP8L frame header after its signature;
- BMP: the 16-bit (OS/2) or 32-bit size fields, as OpenCV reads them.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

FORMATS = "PNG, JPEG, BMP, TIFF or WebP"


@dataclass(frozen=True)
class ImageHeader:
    """What an encoded image says about itself before decoding."""

    format: str
    width: int
    height: int
    #: Why the data cannot be a whole image ("truncated: ...", "corrupt: ..."), or None.
    problem: str | None = None
    #: The largest other allocation the decoder makes from the header (a TIFF tile or page), in pixels.
    extra_pixels: int = 0

    @property
    def pixels(self) -> int:
        return max(self.width * self.height, self.extra_pixels)


class HeaderError(ValueError):
    """The header cannot be parsed (cut short, or garbage); the caller names the file."""


class AmbiguousHeader(ValueError):
    """The header can be read two ways (duplicate tags, two frame headers): refused, never guessed at."""


def sniff(data: bytes) -> str | None:
    """The format name from the signature, or None."""
    for name, test in _SIGNATURES:
        if test(data):
            return name
    return None


def parse(data: bytes, whole: bool = True) -> ImageHeader:
    """The header of ``data`` (HeaderError, AmbiguousHeader); ``whole=False``: ``data`` is only the file's
    first bytes, so only the size is read and no completeness problem is reported."""
    format_name = sniff(data)
    if format_name is None:
        raise HeaderError("unknown format")
    try:
        return _PARSERS[format_name](data, whole)
    except IndexError as err:
        raise HeaderError(str(err)) from None


# --- PNG -------------------------------------------------------------------------------------------

_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png(data: bytes, whole: bool) -> ImageHeader:
    if data[12:16] != b"IHDR" or _u32(data, 8, "big") != 13:
        raise HeaderError("IHDR is not the first chunk")
    width, height = _u32(data, 16, "big"), _u32(data, 20, "big")
    if width > 2**31 - 1 or height > 2**31 - 1:  # libpng's PNG_UINT_31_MAX
        raise HeaderError("size over 2^31 - 1")
    problem = _png_problem(data, width, height) if whole else None
    return ImageHeader("PNG", width, height, problem)


def _png_problem(data: bytes, width: int, height: int) -> str | None:
    """Walk the chunks to IEND checking each CRC (libpng would print its own complaint to stderr)."""
    pos = 8
    while pos + 12 <= len(data):
        length, kind = _u32(data, pos, "big"), data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > len(data):
            break
        if zlib.crc32(data[pos + 4:end - 4]) != _u32(data, end - 4, "big"):
            return f"corrupt: CRC mismatch in the {kind.decode('latin-1')!r} chunk at byte {pos}"
        if kind == b"IHDR" and pos != 8:
            raise AmbiguousHeader(f"a second IHDR chunk at byte {pos}")
        if kind == b"fcTL" and length >= 20:
            w, h, x, y = (_u32(data, pos + 8 + offset, "big") for offset in (4, 8, 12, 16))
            if x + w > width or y + h > height:
                raise AmbiguousHeader(f"an animation frame of {w}x{h} at ({x}, {y}) outside the "
                                      f"{width}x{height} canvas")
        if kind == b"IEND":
            return None
        pos = end
    return "truncated: the data ends before the IEND chunk"


def png_data_problem(data: bytes) -> str | None:
    """Whether the IDAT stream inflates to every row the header promises (a PNG cut short and closed with
    a forged IEND decodes with its last rows black). Inflates in bounded steps; nothing is kept."""
    width, height = _u32(data, 16, "big"), _u32(data, 20, "big")
    depth, color, interlace = data[24], data[25], data[28]
    bits = depth * _PNG_CHANNELS.get(color, 0)
    if not bits:
        return f"corrupt: colour type {color} with bit depth {depth}"
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    expected = 0
    for x0, y0, dx, dy in passes:
        columns, rows = max(0, _ceil(width - x0, dx)), max(0, _ceil(height - y0, dy))
        if columns and rows:
            expected += rows * (1 + (columns * bits + 7) // 8)
    inflater, produced, pos = zlib.decompressobj(), 0, 8
    try:
        while pos + 12 <= len(data) and produced <= expected and not inflater.eof:
            length, kind = _u32(data, pos, "big"), data[pos + 4:pos + 8]
            if kind == b"IDAT":
                pending = data[pos + 8:pos + 8 + length]
                while pending and not inflater.eof and produced <= expected:
                    produced += len(inflater.decompress(pending, 1 << 20))
                    pending = inflater.unconsumed_tail
            elif kind == b"IEND":
                break
            pos += 12 + length
    except zlib.error as err:
        return f"corrupt: the image data is not a valid zlib stream ({err})"
    if produced < expected:
        return f"truncated: the image data holds {produced:,} of its {expected:,} bytes"
    return None


# --- JPEG ------------------------------------------------------------------------------------------

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_SOI, _EOI, _SOS, _DRI = 0xD8, 0xD9, 0xDA, 0xDD
JPEG_CUT = "truncated: the data ends before the end-of-image marker"
#: The end of an entropy-coded segment: 0xFF followed by anything but a stuffed 0x00, a restart marker or fill.
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_RESTART = re.compile(rb"\xff[\xd0-\xd7]")


@dataclass
class _Frame:
    width: int
    height: int
    components: dict[int, tuple[int, int]]  # id -> (horizontal, vertical) sampling

    def mcus(self, scan_components: list[int]) -> int:
        """How many MCUs a scan of these components codes (ITU T.81 A.2)."""
        hmax = max(h for h, _ in self.components.values())
        vmax = max(v for _, v in self.components.values())
        if len(scan_components) == 1:  # non-interleaved: one block per MCU
            h, v = self.components.get(scan_components[0], (hmax, vmax))
            return _ceil(_ceil(self.width * h, hmax), 8) * _ceil(_ceil(self.height * v, vmax), 8)
        return _ceil(self.width, 8 * hmax) * _ceil(self.height, 8 * vmax)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _jpeg(data: bytes, whole: bool) -> ImageHeader:
    """Walk the marker segments as libjpeg does: the first frame header gives the size; with ``whole``,
    on through every scan to the end-of-image marker."""
    pos, frame, restart, scans = 2, None, 0, 0
    while True:
        if pos + 2 > len(data):
            break
        if data[pos] != 0xFF:
            raise HeaderError(f"no marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == _EOI:
            if frame is None:
                raise HeaderError("no frame header before the end-of-image marker")
            return ImageHeader("JPEG", frame.width, frame.height, None if scans else JPEG_CUT)
        if marker == _SOI:
            raise AmbiguousHeader(f"a second start-of-image marker at byte {pos}")
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if pos + 4 > len(data):
            break
        length = _u16(data, pos + 2, "big")
        if length < 2:
            raise HeaderError(f"segment length {length} at byte {pos}")
        body = data[pos + 4:pos + 2 + length]
        if marker in _JPEG_SOF:
            if frame is not None:
                raise AmbiguousHeader(f"a second frame header (SOF) at byte {pos}")
            frame = _frame(body)
            if not whole:
                return ImageHeader("JPEG", frame.width, frame.height)
        elif marker == _DRI:
            restart = _u16(body, 0, "big")
        elif marker == _SOS:
            if frame is None:
                raise HeaderError("a scan before the frame header")
            scans += 1
            pos, problem = _scan(data, pos + 2 + length, frame, body, restart)
            if problem:
                return ImageHeader("JPEG", frame.width, frame.height, problem)
            continue
        pos += 2 + length
    if frame is None:
        raise HeaderError("the data ends before the frame header")
    return ImageHeader("JPEG", frame.width, frame.height, JPEG_CUT)


def _frame(body: bytes) -> _Frame:
    height, width, count = _u16(body, 1, "big"), _u16(body, 3, "big"), body[5]
    components = {}
    for index in range(count):
        ident, sampling = body[6 + 3 * index], body[7 + 3 * index]
        components[ident] = (max(sampling >> 4, 1), max(sampling & 15, 1))
    if not components:
        raise HeaderError("a frame header without components")
    return _Frame(width, height, components)


def _scan(data: bytes, start: int, frame: _Frame, header: bytes, restart: int) -> tuple[int, str | None]:
    """Where the scan's entropy-coded data ends, and whether it holds as many restart markers as its MCUs need."""
    end = _SCAN_END.search(data, start)
    if end is None:
        return len(data), JPEG_CUT
    if restart:
        found = [m.group()[1] - 0xD0 for m in _RESTART.finditer(data, start, end.start())]
        if any(n != i % 8 for i, n in enumerate(found)):
            return end.start(), "corrupt: restart markers out of sequence"
        needed = _ceil(frame.mcus(list(header[1:1 + 2 * header[0]:2])), restart) - 1
        if len(found) < needed:
            return end.start(), (f"truncated: a scan holds {len(found)} of its {needed} restart markers "
                                 "(cut short, then closed with an end marker)")
    return end.start(), None


# --- TIFF ------------------------------------------------------------------------------------------

_TIFF_SIZE_TAGS = {256: "ImageWidth", 257: "ImageLength", 322: "TileWidth", 323: "TileLength"}
_MAX_DIRECTORIES = 1024


def _tiff(data: bytes, whole: bool) -> ImageHeader:
    """The first directory's size (the page OpenCV decodes); every page and tile counts against the cap."""
    order = "little" if data[:2] == b"II" else "big"
    offset, seen, pages = _u32(data, 4, order), set(), []
    while offset and (whole or not pages):
        if offset in seen:
            raise AmbiguousHeader(f"image directories loop back to byte {offset}")
        if len(seen) >= _MAX_DIRECTORIES:
            raise AmbiguousHeader(f"over {_MAX_DIRECTORIES} image directories")
        seen.add(offset)
        size, offset = _tiff_directory(data, offset, order)
        pages.append(size)
    if not pages:
        raise HeaderError("no image directory")
    width, height, tile = pages[0]
    extra = max([w * h for w, h, _ in pages[1:]] + [t for _, _, t in pages], default=0)
    return ImageHeader("TIFF", width, height, extra_pixels=extra)


def _tiff_directory(data: bytes, offset: int, order: str) -> tuple[tuple[int, int, int], int]:
    count = _u16(data, offset, order)
    found: dict[int, int] = {}
    for index in range(count):
        entry = offset + 2 + 12 * index
        tag = _u16(data, entry, order)
        if tag not in _TIFF_SIZE_TAGS:
            continue
        if tag in found:
            raise AmbiguousHeader(f"{_TIFF_SIZE_TAGS[tag]} (tag {tag}) appears twice in the directory at byte "
                                  f"{offset}")
        kind, values = _u16(data, entry + 2, order), _u32(data, entry + 4, order)
        if kind not in (3, 4) or values != 1:
            raise AmbiguousHeader(f"{_TIFF_SIZE_TAGS[tag]} is not one SHORT or LONG value")
        found[tag] = _u16(data, entry + 8, order) if kind == 3 else _u32(data, entry + 8, order)
    if 256 not in found or 257 not in found:
        raise HeaderError(f"the directory at byte {offset} has no ImageWidth or ImageLength")
    tile = found.get(322, 0) * found.get(323, 0)
    next_offset = _u32(data, offset + 2 + 12 * count, order) if len(data) >= offset + 6 + 12 * count else 0
    return (found[256], found[257], tile), next_offset


# --- WebP, BMP -------------------------------------------------------------------------------------

def _webp(data: bytes, whole: bool) -> ImageHeader:
    chunk = data[12:16]
    if chunk == b"VP8X":  # the canvas: what libwebp allocates, and what every frame must fit
        return ImageHeader("WebP", int.from_bytes(_slice(data, 24, 3), "little") + 1,
                           int.from_bytes(_slice(data, 27, 3), "little") + 1)
    if chunk == b"VP8 ":
        if _slice(data, 23, 3) != b"\x9d\x01\x2a":
            raise HeaderError("no VP8 start code")
        return ImageHeader("WebP", _u16(data, 26, "little") & 0x3FFF, _u16(data, 28, "little") & 0x3FFF)
    if chunk == b"VP8L":
        if _slice(data, 20, 1) != b"\x2f":
            raise HeaderError("no VP8L signature")
        bits = _u32(data, 21, "little")
        return ImageHeader("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    raise HeaderError(f"first chunk {chunk!r} is not VP8, VP8L or VP8X")


def _bmp(data: bytes, whole: bool) -> ImageHeader:
    if _u32(data, 14, "little") == 12:  # OS/2 BITMAPCOREHEADER
        return ImageHeader("BMP", _u16(data, 18, "little"), _u16(data, 20, "little"))
    width = int.from_bytes(_slice(data, 18, 4), "little", signed=True)
    height = int.from_bytes(_slice(data, 22, 4), "little", signed=True)
    return ImageHeader("BMP", width, abs(height))


# --- bytes -----------------------------------------------------------------------------------------

def _slice(data: bytes, offset: int, length: int) -> bytes:
    part = data[offset:offset + length]
    if len(part) != length:
        raise IndexError("header cut short")
    return part


def _u16(data: bytes, offset: int, order: str) -> int:
    return int.from_bytes(_slice(data, offset, 2), order)


def _u32(data: bytes, offset: int, order: str) -> int:
    return int.from_bytes(_slice(data, offset, 4), order)


_SIGNATURES: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    ("PNG", lambda data: data.startswith(b"\x89PNG\r\n\x1a\n")),
    ("JPEG", lambda data: data.startswith(b"\xff\xd8")),
    ("BMP", lambda data: data.startswith(b"BM")),
    ("TIFF", lambda data: data.startswith((b"II*\x00", b"MM\x00*"))),
    ("WebP", lambda data: data.startswith(b"RIFF") and data[8:12] == b"WEBP"),
)
_PARSERS: dict[str, Callable[[bytes, bool], ImageHeader]] = {
    "PNG": _png, "JPEG": _jpeg, "BMP": _bmp, "TIFF": _tiff, "WebP": _webp}
