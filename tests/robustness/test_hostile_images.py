"""Hostile image files (issue 15, items 1, 2 and 14): the pixel cap holds whatever the header claims,
files are checked before they are read, and an image cut short is refused even with a forged end marker.

Every file is written by hand here, the way an attacker would: duplicate TIFF tags, extra pages and
tiles, directory loops, a second JPEG frame header or PNG IHDR, an APNG frame outside its canvas, a
JPEG or PNG cut in half and closed with a valid-looking end.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from hostile import encode, png_chunk

from edgefer.errors import InputError
from edgefer.imagefile import MAX_BYTES_ENV, OPENCV_PIXELS_ENV, decode_image, read_header, read_image

# --- TIFF written by hand: one 8-bit gray strip per page -------------------------------------------

def tiff(pages: list[list[tuple[int, int, int]]], order: str = "<", loop: bool = False) -> bytes:
    """A TIFF whose directories hold ``pages`` [(tag, type, value)] (+ the strip tags), chained in order;
    ``loop``: the last directory points back at the first."""
    head = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "I", 8)
    strip = bytes(100 * 100)
    body, offsets = b"", []
    position = 8
    for page in pages:
        offsets.append(position)
        position += 2 + 12 * (len(page) + 6) + 4
    strip_at = position
    for index, page in enumerate(pages):
        entries = [*page, (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, strip_at), (277, 3, 1),
                   (279, 4, len(strip))]
        following = offsets[index + 1] if index + 1 < len(pages) else (offsets[0] if loop else 0)
        body += struct.pack(order + "H", len(entries))
        for tag, kind, value in entries:
            packed = struct.pack(order + "HH", value, 0) if kind == 3 else struct.pack(order + "I", value)
            body += struct.pack(order + "HHI", tag, kind, 1) + packed
        body += struct.pack(order + "I", following)
    return head + body + strip


def size(width: int, height: int, kind: int = 3) -> list[tuple[int, int, int]]:
    return [(256, kind, width), (257, kind, height)]


@pytest.mark.parametrize("order", ["<", ">"])
def test_hand_written_tiff_decodes(order):
    assert decode_image(tiff([size(100, 100)], order)).shape == (100, 100, 3)
    assert decode_image(tiff([size(100, 100, 4), size(100, 100)], order)).shape == (100, 100, 3)


@pytest.mark.parametrize("tags", [
    size(20000, 20000, 4) + size(100, 100),  # the round's case: libtiff reads the first, a last-wins parser the last
    size(100, 100) + size(20000, 20000, 4),
    size(100, 100) + [(256, 3, 100)],  # a duplicate even when it agrees
])
def test_tiff_with_a_size_tag_twice_is_refused_as_ambiguous(tags):
    with pytest.raises(InputError, match="ambiguous TIFF header.*appears twice"):
        decode_image(tiff([tags]), "dup.tif")


@pytest.mark.parametrize("tags", [[(256, 4, 100), (257, 5, 100)], [(256, 16, 100), (257, 3, 100)]])
def test_tiff_size_of_another_type_is_refused(tags):
    with pytest.raises(InputError, match="ambiguous TIFF header.*not one SHORT or LONG"):
        decode_image(tiff([tags]))


def test_every_tiff_page_and_tile_counts_against_the_cap():
    with pytest.raises(InputError, match="page or tile of 400,000,000 pixels exceeds the limit"):
        decode_image(tiff([size(100, 100), size(20000, 20000, 4)]))
    with pytest.raises(InputError, match="page or tile of 400,000,000 pixels"):
        decode_image(tiff([size(100, 100) + [(322, 4, 20000), (323, 4, 20000)]]))


def test_tiff_directory_loop_is_refused():
    with pytest.raises(InputError, match="loop back"):
        decode_image(tiff([size(100, 100), size(100, 100)], loop=True))


# --- JPEG, PNG, WebP: ambiguous headers ------------------------------------------------------------

def jpeg_segments(data: bytes) -> list[tuple[int, int]]:
    """(offset, marker) of the segments before the first scan."""
    found, pos = [], 2
    while data[pos + 1] != 0xDA:
        found.append((pos, data[pos + 1]))
        pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
    return found


@pytest.mark.parametrize("second_first", [False, True])
def test_jpeg_with_two_frame_headers_is_refused(astronaut_bgr, second_first):
    jpeg = encode(astronaut_bgr, ".jpg")
    offset = next(pos for pos, marker in jpeg_segments(jpeg) if marker == 0xC0)
    length = struct.unpack(">H", jpeg[offset + 2:offset + 4])[0]
    sof = jpeg[offset:offset + 2 + length]
    huge = sof[:5] + struct.pack(">HH", 20000, 20000) + sof[9:]
    forged = jpeg[:offset] + (huge + sof if second_first else sof + huge) + jpeg[offset + 2 + length:]
    with pytest.raises(InputError, match="ambiguous JPEG header.*second frame header"):
        decode_image(forged)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        chunks.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return chunks


def png_of(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(png_chunk(kind, body) for kind, body in chunks)


@pytest.fixture(scope="module")
def png_parts(astronaut_bgr):
    chunks = png_chunks(encode(astronaut_bgr, ".png"))
    ihdr = chunks[0]
    idat = b"".join(body for kind, body in chunks if kind == b"IDAT")
    return ihdr, idat


def test_png_with_a_second_ihdr_or_a_frame_outside_its_canvas_is_refused(png_parts):
    ihdr, idat = png_parts
    huge = (b"IHDR", struct.pack(">II", 30000, 30000) + ihdr[1][8:])
    with pytest.raises(InputError, match="ambiguous PNG header.*second IHDR"):
        decode_image(png_of([ihdr, huge, (b"IDAT", idat), (b"IEND", b"")]))
    frame = (b"fcTL", struct.pack(">IIIIIHHBB", 0, 30000, 30000, 0, 0, 1, 10, 0, 0))
    with pytest.raises(InputError, match="ambiguous PNG header.*outside the 512x512 canvas"):
        decode_image(png_of([ihdr, (b"acTL", struct.pack(">II", 1, 0)), frame, (b"IDAT", idat),
                             (b"IEND", b"")]))


def test_webp_without_its_frame_signature_is_refused(astronaut_bgr):
    webp = bytearray(encode(astronaut_bgr, ".webp"))
    assert read_header(bytes(webp)).width == 512
    kind = bytes(webp[12:16])
    webp[20 if kind == b"VP8L" else 23] ^= 0xFF
    with pytest.raises(InputError, match="broken or truncated WebP header"):
        decode_image(bytes(webp))


@pytest.mark.slow
def test_opencv_limit_is_set_from_the_cap_before_cv2_loads(tmp_path):
    """The second wall: OpenCV reads OPENCV_IO_MAX_IMAGE_PIXELS once, when cv2 loads; edgefer sets it from
    its cap on import, and a decoder that finds more pixels than the header said is refused by OpenCV."""
    image = tmp_path / "big.png"
    cv2.imwrite(str(image), np.zeros((100, 100, 3), np.uint8))
    code = textwrap.dedent(f"""
        import os
        import edgefer
        from edgefer.imagefile import ImageHeader, _decode, opencv
        from edgefer.errors import InputError
        opencv()
        print(os.environ["{OPENCV_PIXELS_ENV}"])
        data = open({str(image)!r}, "rb").read()
        try:
            _decode(data, ImageHeader("PNG", 50, 50), "big.png")  # as if the header had said 50x50
        except InputError as err:
            print(err)
    """)
    env = {**os.environ, "EDGEFER_MAX_IMAGE_PIXELS": "5000"}
    env.pop(OPENCV_PIXELS_ENV, None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    limit, message = out.stdout.strip().splitlines()
    assert limit == "5000"
    assert "OpenCV's own limit refuses this PNG" in message


# --- cut short, closed with a forged end ------------------------------------------------------------

@pytest.mark.parametrize("params,match", [
    ((), "truncated JPEG: libjpeg: .*premature end"),
    ((cv2.IMWRITE_JPEG_PROGRESSIVE, 1), "truncated JPEG: libjpeg: .*premature end"),
    ((cv2.IMWRITE_JPEG_RST_INTERVAL, 4), r"truncated JPEG: a scan holds \d+ of its 255 restart markers"),
])
@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_jpeg_cut_short_with_a_forged_end_marker_is_refused(astronaut_bgr, params, match, fraction):
    jpeg = encode(astronaut_bgr, ".jpg", *params)
    assert decode_image(jpeg).shape == (512, 512, 3)
    with pytest.raises(InputError, match=match):
        decode_image(jpeg[:int(len(jpeg) * fraction)] + b"\xff\xd9", "cut.jpg")


def test_png_cut_short_with_a_forged_iend_is_refused(png_parts):
    ihdr, idat = png_parts
    assert decode_image(png_of([ihdr, (b"IDAT", idat), (b"IEND", b"")])).shape == (512, 512, 3)
    with pytest.raises(InputError, match=r"truncated PNG: the image data holds [\d,]+ of its 786,944 bytes"):
        decode_image(png_of([ihdr, (b"IDAT", idat[:len(idat) // 2]), (b"IEND", b"")]))


@pytest.mark.slow
def test_forged_jpeg_on_the_cli_is_exit_2_one_line_without_libjpeg_noise(tmp_path, astronaut_bgr, edgefer):
    jpeg = encode(astronaut_bgr, ".jpg")
    path = tmp_path / "cut.jpg"
    path.write_bytes(jpeg[:len(jpeg) // 2] + b"\xff\xd9")
    out = edgefer("predict", path)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("edgefer: error: ") and "truncated JPEG" in out.stderr


def test_jpeg_warnings_of_other_threads_output_are_passed_on(astronaut_bgr, capfd):
    """The capture of libjpeg's warnings keeps what else reached file descriptor 2 meanwhile."""
    from edgefer.imagefile import _native_stderr_captured

    lines: list[str] = []
    with _native_stderr_captured(lines):
        os.write(2, b"Corrupt JPEG data: premature end of data segment\nsomething else\n")
    assert lines == ["Corrupt JPEG data: premature end of data segment"]
    assert "something else" in capfd.readouterr().err


# --- files checked before they are read --------------------------------------------------------------

@pytest.mark.slow
def test_fifo_device_and_socket_are_not_regular_files(tmp_path, edgefer):
    fifo = tmp_path / "camera.png"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    with pytest.raises(InputError, match=r"camera.png: not a regular file \(a FIFO\)"):
        read_image(fifo)
    with pytest.raises(InputError, match=r"not a regular file \(a character device\)"):
        read_image("/dev/zero")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "s.png"))
        with pytest.raises(InputError, match=r"not a regular file \(a socket\)"):
            read_image(tmp_path / "s.png")
    finally:
        server.close()
    out = edgefer("predict", fifo)
    assert out.returncode == 2 and "not a regular file (a FIFO)" in out.stderr


def test_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path, astronaut_path, monkeypatch):
    sparse = tmp_path / "huge.png"
    with sparse.open("wb") as handle:
        handle.write(astronaut_path.read_bytes()[:64])
        handle.truncate(4 * 1024**3)  # 4 GB, sparse: nothing is read, nothing allocated
    with pytest.raises(InputError, match=r"4,294,967,296-byte file exceeds the limit of 268,435,456 bytes"):
        read_image(sparse)
    monkeypatch.setenv(MAX_BYTES_ENV, "1000")
    with pytest.raises(InputError, match=f"exceeds the limit of 1,000 bytes.*{MAX_BYTES_ENV}"):
        read_image(astronaut_path)
    with pytest.raises(InputError, match="exceed the limit of 1,000 bytes"):
        decode_image(astronaut_path.read_bytes())
    monkeypatch.setenv(MAX_BYTES_ENV, "lots")
    with pytest.raises(InputError, match=f"{MAX_BYTES_ENV} must be a positive whole number"):
        read_image(astronaut_path)


@pytest.mark.slow
def test_the_header_is_checked_before_the_rest_is_read(tmp_path):
    """A 200 MB file whose first bytes say 30000x30000 is refused after reading 64 KiB, not 200 MB."""
    path = tmp_path / "bomb.png"
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0))
    with path.open("wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + ihdr)
        handle.truncate(200 * 1024**2)
    code = textwrap.dedent(f"""
        import resource
        from edgefer.imagefile import read_image
        from edgefer.errors import InputError
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            read_image({str(path)!r})
        except InputError as err:
            print(err)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    message, grown_mib = out.stdout.strip().splitlines()
    assert "30000x30000 image (900.0 MP) exceeds the limit" in message
    assert int(grown_mib) < 32, f"peak RSS grew by {grown_mib} MiB: the file was read whole"


@pytest.mark.parametrize("ext,params", [(".jpg", ()), (".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
                                        (".jpg", (cv2.IMWRITE_JPEG_RST_INTERVAL, 1)), (".png", ()),
                                        (".bmp", ()), (".tiff", ()), (".webp", ()),
                                        (".webp", (cv2.IMWRITE_WEBP_QUALITY, 101))])
def test_every_format_still_reads_whole_files(tmp_path, astronaut_bgr, ext, params):
    path = Path(tmp_path / f"face{ext}")
    path.write_bytes(encode(astronaut_bgr, ext, *params))
    assert read_image(path).shape == (512, 512, 3)
