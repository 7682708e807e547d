"""`core.image_bytes`: an image's format and size from its bytes, and whether the API could decode
them, by walks over headers, chunks and end markers that never decode a pixel and stay bounded."""

from __future__ import annotations

import base64
import itertools
import struct
import zlib

import pytest

from pcache_magic.core.image_bytes import MAX_IMAGE_PARTS, image_flaw, image_size, image_type


def png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


def jpeg(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 4) + b"JF" + sof + b"\xff\xd9"


@pytest.mark.parametrize(
    ("data", "size"),
    [(png(800, 600), (800, 600)), (jpeg(1024, 768), (1024, 768)), (b"GIF89a\x10\x00\x20\x00", (16, 32))],
)
def test_image_size_from_headers(data: bytes, size: tuple[int, int]) -> None:
    assert image_size(data) == size


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + b"garbage" * 10,  # the signature, then no IHDR chunk
        png(0, 600),
        png(2**31, 1),  # past the PNG spec's bound
        b"GIF89a\x00\x00\x20\x00",
        jpeg(0, 768),
        b"\xff\xd8\xff\xe0" + bytes(32),  # no frame header
    ],
)
def test_a_header_that_gives_no_size_is_no_size(data: bytes) -> None:
    """The API cannot process such an image (a 400): no size, rather than a made-up one."""
    assert image_size(data) is None


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


# Whole images, pixel data included (what the API can decode); `png` and `jpeg` above are headers.
FULL_PNG = png(3, 2) + chunk(b"IDAT", zlib.compress(bytes(20))) + chunk(b"IEND", b"")
SOS = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
FULL_JPEG = jpeg(3, 2)[:-2] + SOS + b"\x12\x34\xff\xd9"  # header, scan, end of image
GIF_HEAD = b"GIF89a" + struct.pack("<HHBBB", 3, 2, 0x80, 0, 0) + bytes(6)  # a 2-colour table
GIF_IMAGE = b"\x2c" + struct.pack("<HHHHB", 0, 0, 3, 2, 0) + b"\x02\x02\x4c\x01\x00"
FULL_GIF = GIF_HEAD + b"\x21\xf9\x04" + bytes(4) + b"\x00" + GIF_IMAGE + b"\x3b"  # an extension first


def webp(*chunks: bytes) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


VP8 = b"VP8 " + struct.pack("<I", 12) + b"\x00\x00\x00\x9d\x01\x2a"
FULL_WEBP = webp(VP8 + struct.pack("<HH", 3, 2) + b"\x01\x02")
VP8L = b"VP8L" + struct.pack("<I", 8) + b"\x2f" + (2 | 1 << 14).to_bytes(4, "little") + b"\x01\x02\x00"
VP8X = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (2).to_bytes(3, "little") + (1).to_bytes(3, "little")


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (FULL_PNG, (3, 2)),
        (FULL_JPEG, (3, 2)),
        (FULL_GIF, (3, 2)),
        (FULL_WEBP, (3, 2)),
        (webp(VP8L), (3, 2)),
        (webp(VP8X, VP8 + struct.pack("<HH", 3, 2) + b"\x01\x02"), (3, 2)),  # extended: VP8X, then VP8
    ],
    ids=["png", "jpeg", "gif", "webp-vp8", "webp-vp8l", "webp-vp8x"],
)
def test_a_whole_image_has_its_size_and_its_pixels(data: bytes, size: tuple[int, int]) -> None:
    assert image_size(data, complete=True) == image_size(data) == size


@pytest.mark.parametrize(
    "data",
    [
        png(3, 2),  # signature and IHDR only
        png(3, 2) + chunk(b"IEND", b""),  # no IDAT
        png(3, 2) + chunk(b"IDAT", b"") + chunk(b"IEND", b""),  # an empty IDAT
        png(3, 2) + chunk(b"IDAT", zlib.compress(bytes(20))),  # no IEND
        FULL_PNG[:-20],  # cut inside IDAT: the chunk's length runs past the bytes given
        jpeg(3, 2),  # frame header, then end of image: no scan
        jpeg(3, 2)[:-2],  # cut right after the size
        jpeg(3, 2)[:-2] + SOS,  # a scan header and no scan data
        b"\xff\xd8" + SOS + jpeg(3, 2)[2:],  # the scan before the frame header
        b"GIF89a" + struct.pack("<HH", 3, 2),  # cut right after the size
        GIF_HEAD + b"\x3b",  # the trailer, no image descriptor
        GIF_HEAD + GIF_IMAGE[:10],  # a descriptor and no data
        GIF_HEAD + b"\x21\xf9\x04" + bytes(4),  # an unterminated extension
        webp(VP8 + struct.pack("<HH", 3, 2)),  # the bitstream chunk cut after the size
        webp(VP8L[:13]),  # VP8L's length runs past the bytes given
        webp(VP8X),  # extended header, no bitstream chunk
    ],
    ids=[
        *("png-ihdr", "png-no-idat", "png-empty-idat", "png-no-iend", "png-cut"),
        *("jpeg-no-scan", "jpeg-cut", "jpeg-empty-scan", "jpeg-scan-first"),
        *("gif-cut", "gif-no-image", "gif-descriptor-only", "gif-open-extension"),
        *("webp-vp8-cut", "webp-vp8l-cut", "webp-vp8x-only"),
    ],
)
def test_a_header_without_pixel_data_is_no_size_when_complete(data: bytes) -> None:
    """The API cannot process such bytes (a 400); the estimator, given a prefix, still sizes them."""
    assert image_size(data, complete=True) is None


@pytest.mark.parametrize(
    "whole", [FULL_PNG, FULL_JPEG, FULL_GIF, FULL_WEBP, webp(VP8L)], ids=["png", "jpeg", "gif", "vp8", "vp8l"]
)
def test_the_pixel_check_stays_within_the_bytes_given(whole: bytes) -> None:
    """Every prefix, and every single-byte change, is answered without an exception: no read past
    the end (a length field pointing beyond it), no loop that does not advance."""
    for end in range(len(whole) + 1):
        image_size(whole[:end], complete=True)
    for at, value in itertools.product(range(len(whole)), (0x00, 0x2C, 0xDA, 0xFF)):
        image_size(whole[:at] + bytes([value]) + whole[at + 1 :], complete=True)


#: Hostile layouts, each with `n` empty parts before its pixel data: a walk takes a step per part.
MANY_PARTS = {
    "jpeg-empty-segments": lambda n: b"\xff\xd8" + b"\xff\xe0\x00\x02" * n + FULL_JPEG[2:],
    "jpeg-restart-markers": lambda n: b"\xff\xd8" + b"\xff\xd0" * n + FULL_JPEG[2:],
    "jpeg-stray-bytes": lambda n: b"\xff\xd8" + bytes(n) + FULL_JPEG[2:],
    "png-empty-chunks": lambda n: FULL_PNG[:33] + chunk(b"tEXt", b"") * n + FULL_PNG[33:],
    "gif-one-byte-sub-blocks": lambda n: (
        GIF_HEAD + b"\x21\xfe" + b"\x01a" * n + b"\x00" + GIF_IMAGE + b"\x3b"
    ),
    "webp-empty-chunks": lambda n: webp(VP8X, b"JUNK\x00\x00\x00\x00" * n, FULL_WEBP[12:]),
}


@pytest.mark.parametrize("name", MANY_PARTS)
def test_a_walk_gives_up_after_max_image_parts(name: str) -> None:
    """Real images have a few hundred parts before their pixels; hostile ones (~1 s of walking per
    5 MB) are answered as unreadable once the walk has taken `MAX_IMAGE_PARTS` steps."""
    make = MANY_PARTS[name]
    assert image_size(make(MAX_IMAGE_PARTS - 100), complete=True) == (3, 2)
    assert image_size(make(MAX_IMAGE_PARTS), complete=True) is None
    assert MAX_IMAGE_PARTS == 10_000


#: Real 3x2 images, written (and decoded) by Pillow 13: tables, scans and bitstreams as encoders make them.
REAL = {
    "png": (
        "iVBORw0KGgoAAAANSUhEUgAAAAMAAAACCAIAAAASFvFNAAAAHElEQVR4nGM8IRfFwMDAwMDAxMDAYPFwGQMDAwAfdwMD"
        "/AIVswAAAABJRU5ErkJggg=="
    ),
    "jpeg": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1R"
        "V19iZ2hnPk1xeXBkeFxlZ2P/wAALCAACAAMBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAABf/EABoQAQACAwEAAAAAAAAAAAAA"
        "AAECEQADIrH/2gAIAQEAAD8AO3ATKK5j4Z//2Q=="
    ),
    "jpeg-progressive": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1R"
        "V19iZ2hnPk1xeXBkeFxlZ2P/wgALCAACAAMBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAABP/aAAgBAQAAAAE3/8QAFRABAQAA"
        "AAAAAAAAAAAAAAAAAAH/2gAIAQEAAQUCr//EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEABj8Cf//EABcQAAMBAAAAAAAA"
        "AAAAAAAAAAABMYH/2gAIAQEAAT8hvEf/2gAIAQEAAAAQ/wD/xAAXEAEBAQEAAAAAAAAAAAAAAAABEQDR/9oACAEBAAE/EABh"
        "OBv/2Q=="
    ),
    "gif": "R0lGODdhAwACAIEAAAD/AMgeWgAAAAAAACwAAAAAAwACAAAICAADCAwAIEBAADs=",
    "webp": (
        "UklGRkIAAABXRUJQVlA4IDYAAACwAQCdASoDAAIAAsBMJagCdAD0bSIoAP6mevbBM9sMUNQcSQRK8//k11h7i/8Bf7NTL7X5gAA="
    ),
    "webp-lossless": "UklGRiIAAABXRUJQVlA4TBUAAAAvAkAAAA/wj/9BHq35jzS84CCi/xEA",
}


@pytest.mark.parametrize("name", REAL)
def test_real_images_pass_every_check(name: str) -> None:
    """What encoders write passes, with bytes after the format's end too (a JPEG's trailer, bytes
    past a WebP's RIFF size or a PNG's IEND: decoders ignore them; a GIF's NUL padding only, as its
    trailer is found from the end)."""
    data = base64.b64decode(REAL[name])
    assert image_type(data) == "image/" + name.partition("-")[0]
    for whole in (data, data + bytes(100), data + (b"" if name == "gif" else b"trailer")):
        assert image_flaw(whole) is None
        assert image_size(whole, complete=True) == (3, 2)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (FULL_PNG, "image/png"),
        (FULL_JPEG, "image/jpeg"),
        (b"GIF87a" + FULL_GIF[6:], "image/gif"),
        (FULL_GIF, "image/gif"),
        (FULL_WEBP, "image/webp"),
        (b"\xff\xd8\x00" + FULL_JPEG[3:], None),  # a JPEG decoder wants FF D8 FF
        (b"BM" + bytes(60), None),
        (b"<html>not found</html>", None),
        (b"", None),
    ],
)
def test_the_type_is_the_bytes_signature(data: bytes, kind: str | None) -> None:
    assert image_type(data) == kind


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1 :]


def riff(data: bytes, size: int) -> bytes:
    return data[:4] + struct.pack("<I", size) + data[8:]


IDAT_AT = 33 + 8  # FULL_PNG's first IDAT byte
BROKEN = {
    # A PNG: a checksum, a chunk type, the zlib stream's header, an IHDR field.
    "png-idat-crc": (flip(FULL_PNG, IDAT_AT + 5), "damaged"),
    "png-ihdr-crc": (FULL_PNG[:29] + b"\x00\x00\x00\x00" + FULL_PNG[33:], "damaged"),
    "png-chunk-type": (FULL_PNG[:33] + chunk(b"t\x00Xt", b"x") + FULL_PNG[33:], "damaged"),
    "png-not-zlib": (png(3, 2) + chunk(b"IDAT", bytes(20)) + chunk(b"IEND", b""), "damaged"),
    "png-bit-depth": (
        FULL_PNG[:8] + chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 3, 2, 0, 0, 0)) + FULL_PNG[33:],
        "damaged",
    ),
    # A JPEG: no end of image after its scan, or headers whose lengths do not fit their counts.
    "jpeg-no-eoi": (FULL_JPEG[:-2], "cut short"),
    "jpeg-garbage-scan": (FULL_JPEG[:-4] + bytes(range(256)) * 4, "cut short"),
    "jpeg-scan-header": (FULL_JPEG.replace(SOS, b"\xff\xda\x00\x08\x02" + SOS[5:]), "damaged"),
    "jpeg-frame-header": (FULL_JPEG.replace(b"\x00\x02\x00\x03\x01", b"\x00\x02\x00\x03\x02"), "damaged"),
    # A GIF with no trailer; a WebP shorter than its RIFF size, or with a bitstream of another kind.
    "gif-no-trailer": (FULL_GIF[:-1], "cut short"),
    "gif-trailer-then-data": (FULL_GIF[:-1] + b"\x00\x01\x02", "cut short"),
    "webp-riff-over": (riff(FULL_WEBP, len(FULL_WEBP) - 6), "cut short"),
    "webp-riff-under": (riff(FULL_WEBP, len(FULL_WEBP) - 12), "damaged"),
    "webp-vp8-start-code": (FULL_WEBP.replace(b"\x9d\x01\x2a", b"\x9d\x01\x2b"), "damaged"),
    "webp-vp8l-signature": (webp(VP8L.replace(b"\x2f", b"\x2e", 1)), "damaged"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_bytes_that_break_their_format_are_no_size_when_complete(name: str) -> None:
    """Each passed the old walk (a header, pixel data after it) and is one the API cannot decode: a
    checksum that does not match, a header field out of the spec, data that stops before its end."""
    data, flaw = BROKEN[name]
    assert image_size(data) == (3, 2)  # the header is fine: the estimator still sizes a prefix
    assert image_size(data, complete=True) is None
    assert image_flaw(data) == flaw


def test_each_flaw_is_named() -> None:
    assert image_flaw(b"%PDF-1.4") == "not an image"
    assert image_flaw(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10) == "no size"
    assert image_flaw(png(3, 2)) == "no pixels"
    assert image_flaw(FULL_PNG[:-12]) == "cut short"  # its image data, then no IEND
    assert image_flaw(FULL_PNG) is None


def test_hostile_short_jpegs_and_lying_zlib_streams_are_flaws_not_errors() -> None:
    """A scan header cut before its component count raised IndexError (a 500 from the emulator, a
    traceback from --image); image data behind a valid zlib header must inflate, and PNG forbids
    a preset dictionary (Pillow refuses all three: so, most likely, does the API)."""
    assert image_flaw(b"\xff\xd8\xff\xda\x00\x00") == "no size"  # no frame header before the scan
    assert image_flaw(b"\xff\xd8\xff\xda\x00\x01") == "no size"
    ihdr = FULL_PNG[:33]
    for stream in (b"\x78\x9c" + bytes(range(7, 207)), b"\x78\xbb" + zlib.compress(b"\0" * 40)[2:]):
        assert image_flaw(ihdr + chunk(b"IDAT", stream) + FULL_PNG[-12:]) == "damaged"


def test_checksums_and_the_end_marker_search_stay_bounded() -> None:
    """A PNG's CRCs are checked in its first 32 KiB (a whole check would decode all its base64);
    a JPEG's end of image is looked for within 1 MiB of its end (a motion photo's video after it)."""
    stream = zlib.compress(bytes(200_000), 0)
    idats = [chunk(b"IDAT", stream[at : at + 8192]) for at in range(0, len(stream), 8192)]
    big = FULL_PNG[:33] + b"".join(idats) + FULL_PNG[-12:]
    assert image_flaw(big) is None
    assert image_flaw(flip(big, 33 + 2 * (8192 + 12) + 100)) == "damaged"  # the 3rd IDAT: checked
    assert image_flaw(flip(big, 33 + 3 * (8192 + 12) + 100)) is None  # the 4th: past the budget
    video = bytes(range(217)) * 4_000  # no FF D9 in it
    assert image_flaw(FULL_JPEG + video) is None  # 0.9 MB after the end of image
    assert image_flaw(FULL_JPEG + video * 2) == "cut short"  # 1.7 MB: past the search


def test_a_png_of_many_small_data_chunks_and_a_gif_with_bytes_after_its_trailer_pass() -> None:
    """Valid files decoders read (Pillow did) were refused: 19,000 16-byte IDATs ran the walk out
    of steps ("no pixels"), and a GIF with a few bytes after its trailer read as cut short."""
    stream = zlib.compress(bytes(200_000), 0)
    idats = b"".join(chunk(b"IDAT", stream[at : at + 16]) for at in range(0, len(stream), 16))
    assert len(stream) // 16 > MAX_IMAGE_PARTS
    assert image_flaw(FULL_PNG[:33] + idats + FULL_PNG[-12:]) is None
    assert image_flaw(FULL_PNG[:33] + idats) == "cut short"  # no IEND at its end: not whole
    garbage = chunk(b"IDAT", b"\x78\x9c" + bytes(range(7, 207))) + idats
    assert image_flaw(FULL_PNG[:33] + garbage + FULL_PNG[-12:]) == "damaged"  # its start is read
    assert image_flaw(FULL_GIF + b"junk") is None
    assert image_flaw(FULL_GIF[:-1]) == "cut short"


def test_the_stream_is_read_across_small_first_idats() -> None:
    """A 1- or 2-byte first IDAT skipped the inflate check: the start is now joined over IDATs."""
    bad = b"\x78\x9c" + bytes(range(7, 207))
    split = chunk(b"IDAT", bad[:1]) + chunk(b"IDAT", bad[1:2]) + chunk(b"IDAT", bad[2:])
    assert image_flaw(FULL_PNG[:33] + split + FULL_PNG[-12:]) == "damaged"
    good = zlib.compress(bytes(7 * 2 + 2))
    split = b"".join(chunk(b"IDAT", good[k : k + 1]) for k in range(len(good)))
    assert image_flaw(FULL_PNG[:33] + split + FULL_PNG[-12:]) is None


def test_a_short_stream_must_end_and_bytes_may_follow_iend_in_a_long_png() -> None:
    """A cut stream raises nothing while it is read: when all the image data was inflated, it must
    end ("cut short" else; Pillow: "image file is truncated").  A PNG of more chunks than a walk
    takes may carry a few bytes after its IEND, as decoders allow."""
    ihdr, iend = FULL_PNG[:33], FULL_PNG[-12:]
    whole = zlib.compress(bytes(7 * 2 + 2))
    assert image_flaw(ihdr + chunk(b"IDAT", whole) + iend) is None
    for cut in (b"\x78\x9c", zlib.compress(b"")[:-4], zlib.compress(bytes(range(256)) * 4)[:-10]):
        assert image_flaw(ihdr + chunk(b"IDAT", cut) + iend) == "cut short"
    stream = zlib.compress(bytes(200_000), 0)
    idats = b"".join(chunk(b"IDAT", stream[at : at + 16]) for at in range(0, len(stream), 16))
    assert image_flaw(ihdr + idats + iend + b"trailing") is None
