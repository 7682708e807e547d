"""What an image's bytes are (PNG, JPEG, GIF, WebP), its size, and whether the API could decode it.

The API sniffs an image's format from its bytes (a declared ``media_type`` that differs is a 400)
and decodes every image it is sent: bytes it cannot decode are a 400, "Could not process image".
These walks tell such bytes apart without decoding a pixel: chunk, segment and block headers,
the PNG checksums within a budget, and the end marker of each format.  Each walk is bounded
(`MAX_IMAGE_PARTS` steps, `_CRC_BUDGET` bytes checksummed, `_EOI_SEARCH` bytes searched), so
hostile bytes cost little; callers pass `bytes` or a view that decodes base64 where it is read.
Pure.
"""

from __future__ import annotations

import struct
import zlib
from typing import Literal, Protocol, SupportsIndex, overload

__all__ = ["MAX_IMAGE_PARTS", "ImageBytes", "ImageFlaw", "image_flaw", "image_size", "image_type"]

#: Chunks, segments, sub-blocks (or stray bytes) a header walk takes before it gives up (no size).
#: Real images have a few hundred: a JPEG's segments before its scan, a PNG's chunks to IEND (its
#: IDATs at libpng's 8 KiB: ~480 under the API's 5 MB).  Without it, hostile bytes (a JPEG of
#: empty segments, a PNG of empty chunks) cost a Python step every 2 to 12 bytes: ~1 s per 5 MB.
MAX_IMAGE_PARTS = 10_000
#: PNG bytes whose CRC is checked, chunk by chunk from the start (empty chunks such as IEND always):
#: the header and the first IDATs.  Every chunk's would cost a whole base64 decode (~11 ms per 5 MB).
_CRC_BUDGET = 32 * 1024
#: How far back from its end a JPEG is searched for its end-of-image marker (a motion photo keeps
#: a video after it), a window at a time.
_EOI_SEARCH = 1024 * 1024
#: Bytes of a PNG's first IDAT inflated to see that they are a deflate stream, and the most they
#: may inflate to (random bytes behind a valid zlib header fail within a few hundred bytes).
_INFLATE, _INFLATED = 4096, 65536
#: The last chunk of every PNG: length 0, "IEND", its CRC; looked for in the last `_TAIL` bytes
#: of one whose walk ran out of steps (a few bytes may follow it, as decoders allow).
_IEND, _TAIL = b"\x00\x00\x00\x00IEND\xaeB`\x82", 4096
_WINDOW = 64 * 1024
#: PNG bit depths allowed for each colour type (the PNG spec, IHDR).
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
#: Bytes of a WebP bitstream chunk that are header, not pixels.
_WEBP_HEADERS = {b"VP8 ": 10, b"VP8L": 5, b"ANMF": 16}

#: Why whole bytes cannot be decoded: no recognised format; a header that gives no size; a header
#: with no pixel data after it; data that stops before the format's end; bytes that break its rules.
ImageFlaw = Literal["not an image", "no size", "no pixels", "cut short", "damaged"]


class ImageBytes(Protocol):
    """What the walks read: a length, and bytes by slice or one byte by index.  `bytes` is one;
    `emulator.image_check` passes a view that decodes base64 only where it is read."""

    def __len__(self) -> int: ...

    @overload
    def __getitem__(self, key: SupportsIndex, /) -> int: ...

    @overload
    def __getitem__(self, key: slice, /) -> bytes: ...


def image_type(data: ImageBytes) -> str | None:
    """The media type the bytes' signature gives (``image/png`` ...), None for any other bytes."""
    head = data[:12]
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if head[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_size(data: ImageBytes, *, complete: bool = False) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF, JPEG or WebP header; None if unrecognised, or if the header
    does not give a size (a PNG signature then garbage: the API answers "Could not process image").

    With `complete`, None as well when `image_flaw` finds one: `data` must then be the whole file
    (the estimator passes a prefix, without `complete`).
    """
    size, flaw = _examine(data, complete)
    return None if flaw else size


def image_flaw(data: ImageBytes) -> ImageFlaw | None:
    """Why the API could not decode these whole bytes, or None: a header with no pixel data after it
    (a PNG without IDAT and IEND, a JPEG without a scan, a GIF without an image descriptor, a WebP
    without its bitstream chunk), data cut before its end (a JPEG without EOI, a GIF without its
    trailer, a WebP shorter than its RIFF size), or damage (a PNG chunk whose CRC is wrong, ...)."""
    return _examine(data, True)[1]


def _examine(data: ImageBytes, complete: bool) -> tuple[tuple[int, int] | None, ImageFlaw | None]:
    kind, head = image_type(data), data[:30]
    size: tuple[int, int] | None = None
    flaw: ImageFlaw | None = None
    if kind is None and head[:2] != b"\xff\xd8":
        return None, "not an image"
    if kind == "image/png" and head[12:16] == b"IHDR" and len(head) >= 24:
        w, h = struct.unpack(">II", head[16:24])
        size = (int(w), int(h)) if max(w, h) < 2**31 else None  # the PNG spec's bound
        flaw = _png_flaw(data) if complete else None
    elif kind == "image/gif" and len(head) >= 10:
        w, h = struct.unpack("<HH", head[6:10])
        size, flaw = (int(w), int(h)), _gif_flaw(data) if complete else None
    elif kind == "image/webp":
        size, flaw = _webp_size(head), _webp_flaw(data) if complete else None
    elif kind != "image/png" and head[:2] == b"\xff\xd8":
        size, flaw = _jpeg(data, complete)
    if size is None or min(size) <= 0:
        return None, "no size"
    return size, flaw


def _webp_size(head: bytes) -> tuple[int, int] | None:
    kind = head[12:16]
    if kind == b"VP8X" and len(head) >= 30:
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        return w, h
    if kind == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 " and len(head) >= 30:
        w, h = struct.unpack("<HH", head[26:30])
        return int(w) & 0x3FFF, int(h) & 0x3FFF
    return None


def _jpeg(data: ImageBytes, complete: bool) -> tuple[tuple[int, int] | None, ImageFlaw | None]:
    """The frame header's (width, height), and with `complete` the flaw: no start-of-scan segment
    with scan bytes after it, or no end-of-image marker after the scan (the first scan ends the
    walk: the rest is entropy-coded data, where 0xFF is always escaped, so FF D9 is the end)."""
    i, size, bad_frame = 2, None, False
    for _ in range(MAX_IMAGE_PARTS):
        head = data[i : i + 5]
        if len(head) < 4:
            break
        marker = head[1]
        if head[0] != 0xFF or marker == 0xFF:  # stray byte or fill byte
            i += 1
        elif marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
        elif marker == 0xD9:  # end of image before any scan
            break
        else:
            length = int.from_bytes(head[2:4], "big")
            if marker == 0xDA:
                return size, _scan_flaw(data, i, length, bad_frame) if complete else None
            if size is None and 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                frame = data[i + 5 : i + 10]
                if len(frame) < 5:
                    break
                h, w, parts = struct.unpack(">HHB", frame)
                size = (int(w), int(h))
                bad_frame = not parts or length != 8 + 3 * parts
            i += 2 + length
    return size, "no pixels" if complete else None


def _scan_flaw(data: ImageBytes, i: int, length: int, bad_frame: bool) -> ImageFlaw | None:
    """The flaw of a JPEG whose first scan header is at `i`: no scan data, a frame or scan header
    whose length does not fit its component count, or no end-of-image marker within `_EOI_SEARCH`
    of the end."""
    start, end = i + 2 + length, len(data)
    if start >= end or i + 4 >= end:  # no scan bytes, or a header cut before its component count
        return "no pixels"
    parts = data[i + 4]
    if bad_frame or not 1 <= parts <= 4 or length != 6 + 2 * parts:
        return "damaged"
    stop = max(start, end - _EOI_SEARCH)
    while end - stop >= 2:
        low = max(stop, end - _WINDOW)
        if b"\xff\xd9" in data[low:end]:
            return None
        end = low + 1  # windows overlap by a byte: a marker across two is found
    return "cut short"


def _png_flaw(data: ImageBytes) -> ImageFlaw | None:
    """A valid IHDR; chunks with letters for a type, each whole, then IEND after non-empty IDATs
    whose joined start is a zlib stream (`_zlib_flaw`: one that ends, when it is all there); and
    the right CRC for each chunk within `_CRC_BUDGET`.  A PNG of more chunks than a walk takes
    passes with image data among them, a good stream start and an IEND near its end."""
    if len(data) < 33:
        return "no pixels"
    depth, colour, compression, filtering, interlace = data[24:29]
    if data[8:12] != b"\x00\x00\x00\x0d" or depth not in _PNG_DEPTHS.get(colour, ()):
        return "damaged"
    if compression or filtering or interlace > 1:
        return "damaged"
    i, idat, budget, start, whole = 8, False, _CRC_BUDGET, bytearray(), True
    for _ in range(MAX_IMAGE_PARTS):
        head = data[i : i + 10]
        if len(head) < 8:
            break
        length, kind = int.from_bytes(head[:4], "big"), head[4:8]
        end = i + 12 + length  # length, type, data, CRC
        if end > len(data):  # cut inside the chunk
            break
        if not kind.isalpha():
            return "damaged"
        if length + 4 <= budget or not length:
            budget -= length + 4
            body = data[i + 4 : end]
            if zlib.crc32(body[:-4]) != int.from_bytes(body[-4:], "big"):
                return "damaged"
        if kind == b"IDAT" and len(start) < _INFLATE:  # the stream's start, over small IDATs too
            whole = length <= _INFLATE - len(start)  # every image byte so far is in `start`
            start += data[i + 8 : i + 8 + min(length, _INFLATE - len(start))]
            if len(start) == _INFLATE and _zlib_flaw(start):
                return "damaged"
        if kind == b"IEND":
            return _zlib_flaw(start, whole=whole) if idat else "no pixels"
        if kind == b"IDAT" and length and len(start) >= _INFLATE:
            whole = False  # image data past the part inflated: its end is not checked
        idat = idat or (kind == b"IDAT" and length > 0)
        i = end
    else:  # more chunks than a walk takes, image data among them: whole if IEND is near its end
        if idat and _IEND in data[max(i, len(data) - _TAIL) :] and not _zlib_flaw(start):
            return None
    return "cut short" if idat else "no pixels"


def _zlib_flaw(start: bytes | bytearray, *, whole: bool = False) -> ImageFlaw | None:
    """Whether the first bytes of a PNG's image data (its IDATs' joined, up to `_INFLATE`) are no
    zlib stream ("damaged"): the header (deflate, a window of at most 32K, no preset dictionary,
    which PNG forbids, the check bits), then the deflate blocks as far as `start` goes (inflated
    into at most `_INFLATED` bytes).  `whole`: `start` is all the image data, so the stream must
    end in it, else "cut short" (a stream cut short raises nothing while it is read)."""
    if len(start) < 2:
        return "damaged"
    cmf, flg = start[0], start[1]
    if cmf & 0x0F != 8 or cmf >> 4 > 7 or flg & 0x20 or (cmf << 8 | flg) % 31:
        return "damaged"
    inflate = zlib.decompressobj()
    try:
        inflate.decompress(start, _INFLATED)
    except zlib.error:
        return "damaged"
    return "cut short" if whole and not inflate.eof and not inflate.unconsumed_tail else None


def _gif_flaw(data: ImageBytes) -> ImageFlaw | None:
    """An image descriptor (0x2C) after the extensions, with its colour table and a data sub-block;
    a trailer (0x3B) in the last 4 KiB (bytes after it pass, as decoders read them; the image data's
    sub-blocks are not walked: ~15,000 steps in 3.75 MB)."""
    n = len(data)
    if n < 13:
        return "no pixels"
    packed = data[10]
    i = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)  # the global colour table
    steps = 0
    while i < n and data[i] == 0x21:  # an extension: label, sub-blocks, a 0 terminator
        i += 2
        while i < n and (length := data[i]):
            i += length + 1
            steps += 1
            if steps > MAX_IMAGE_PARTS:
                return "no pixels"
        i += 1
        steps += 1
        if steps > MAX_IMAGE_PARTS:
            return "no pixels"
    descriptor = data[i : i + 10]
    if len(descriptor) < 10 or descriptor[0] != 0x2C:  # no descriptor: the trailer, junk or the end
        return "no pixels"
    packed = descriptor[9]
    i += 10 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0) + 1  # local table, LZW code size
    if not (i < n and data[i] > 0 and i + 1 + data[i] <= n):
        return "no pixels"
    return None if b"\x3b" in data[max(i, n - 4096) : n] else "cut short"  # bytes after it pass


def _webp_flaw(data: ImageBytes) -> ImageFlaw | None:
    """A VP8 (key frame start code), VP8L (signature) or, animated, ANMF chunk, whole and with more
    than its header, within a RIFF size the bytes hold (bytes after it are ignored, as libwebp does)."""
    i, riff = 12, int.from_bytes(data[4:8], "little")
    for _ in range(MAX_IMAGE_PARTS):
        head = data[i : i + 12]
        if len(head) < 8:
            break
        kind, length = head[:4], int.from_bytes(head[4:8], "little")
        i += 8 + length
        if i > len(data):
            break
        if length > _WEBP_HEADERS.get(kind, length):
            if (kind == b"VP8 " and data[i - length + 3 : i - length + 6] != b"\x9d\x01\x2a") or (
                kind == b"VP8L" and head[8] != 0x2F
            ):
                return "damaged"
            if riff + 8 > len(data):
                return "cut short"
            return None if i <= riff + 8 else "damaged"
        i += length & 1  # chunks are padded to an even size
    return "no pixels"
