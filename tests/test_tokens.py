"""The offline estimator: deterministic, calibrated to real counts, memoized, image and PDF aware."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import itertools
import json
import lzma
import math
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from pcache_magic.core.digest import block_digest
from pcache_magic.core.tokens import (
    BLOCK_OVERHEAD,
    MANY_IMAGES,
    MANY_IMAGES_EDGE,
    MAX_IMAGE_EDGE,
    MAX_IMAGE_PARTS,
    PDF_PAGE_TOKENS,
    TokenEstimator,
    image_size,
    image_tokens,
)


def png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


def jpeg(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 4) + b"JF" + sof + b"\xff\xd9"


def test_text_scale_is_plausible() -> None:
    est = TokenEstimator()
    prose = "The quick brown fox jumps over the lazy dog. " * 100
    words = len(prose.split())
    assert 0.9 * words <= est.text(prose) <= 1.6 * words
    assert est.text("") == 0


def test_text_is_deterministic_and_grows_with_content() -> None:
    est = TokenEstimator()
    assert est.text("hello world") == TokenEstimator().text("hello world")
    assert est.text("a" * 400) > est.text("a" * 40) > 0
    assert est.text("中文" * 50) >= 50  # non-ASCII costs about a token a character


def test_code_counts_symbols() -> None:
    est = TokenEstimator()
    assert est.text("f(x)+g(y)") >= 8


def test_digest_follows_what_is_inside_a_block_as_sent() -> None:
    # The API renders a block's fields in its own format, but a tool input or schema as given:
    # reordering the keys inside it is another prompt (the docs warn of languages that do so).
    use = {"type": "tool_use", "id": "t1", "name": "shot", "input": {"a": 1, "b": 2}}
    assert block_digest(use) == block_digest(dict(reversed(use.items())))
    assert block_digest(use) != block_digest({**use, "input": {"b": 2, "a": 1}})
    tool = {"name": "t", "input_schema": {"type": "object", "properties": {"x": {}, "y": {}}}}
    swapped = {"name": "t", "input_schema": {"type": "object", "properties": {"y": {}, "x": {}}}}
    assert block_digest(tool) != block_digest(swapped)


def test_block_ignores_cache_control_and_memoizes() -> None:
    est = TokenEstimator()
    plain = {"type": "text", "text": "some words here"}
    marked = {**plain, "cache_control": {"type": "ephemeral"}}
    assert block_digest(plain) == block_digest(marked)
    assert est.block(plain) == est.block(marked) == BLOCK_OVERHEAD + est.text("some words here")
    assert len(est._memo) == 1


def test_memo_is_bounded() -> None:
    est = TokenEstimator(memo_size=10)
    for i in range(50):
        est.block({"type": "text", "text": f"block {i}"})
    assert len(est._memo) == 10


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


def test_the_documented_size_limits() -> None:
    assert (MAX_IMAGE_EDGE, MANY_IMAGES, MANY_IMAGES_EDGE) == (8000, 20, 2000)


def test_image_tokens_follow_the_documented_rule() -> None:
    assert image_tokens(200, 200) == 54  # 200*200/750 = 53.3
    assert image_tokens(1000, 1000) == 1334  # ceil(1e6/750)
    assert image_tokens(4000, 4000) == 1600  # resized, capped at ~1.15 megapixels
    assert image_tokens(0, 10) == 0


def test_image_block_uses_pixel_size() -> None:
    est = TokenEstimator()
    data = base64.b64encode(png(1000, 1000)).decode()
    block = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    assert est.block(block) == BLOCK_OVERHEAD + 1334


def test_pdf_document_counts_pages() -> None:
    est = TokenEstimator()
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Pages >>\n2 0 obj << /Type /Page >>\n3 0 obj << /Type /Page >>"
    block = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(pdf).decode()},
    }
    assert est.block(block) == BLOCK_OVERHEAD + 2 * PDF_PAGE_TOKENS


def test_text_document_and_tool_blocks() -> None:
    est = TokenEstimator()
    doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "alpha beta"}}
    assert est.block(doc) == BLOCK_OVERHEAD + est.text("alpha beta")
    use = {"type": "tool_use", "id": "t1", "name": "lookup", "input": {"q": "x"}}
    result = {"type": "tool_result", "tool_use_id": "t1", "content": "result text"}
    assert est.block(use) > BLOCK_OVERHEAD
    assert est.block(result) == BLOCK_OVERHEAD + est.text("result text")
    tool = {"name": "lookup", "description": "Look a thing up", "input_schema": {"type": "object"}}
    assert est.tool(tool) == est.tool({**tool, "cache_control": {"type": "ephemeral"}}) > 8


# -- calibration against real counts (tests/data/token_references.json) ---------------------------

DATA = Path(__file__).parent / "data"
REFERENCES = json.loads((DATA / "token_references.json").read_text(encoding="utf-8"))
POINTS = REFERENCES["points"]
#: The issue's goals: within 7% either way on prose, code and JSON; never more than 15% low.
CLOSE, NEVER_LOW = 0.07, 0.85


def point_text(point: dict[str, Any]) -> str:
    if "text" in point:
        return str(point["text"])
    if "text_repeat" in point:
        return str(point["text_repeat"]["unit"]) * int(point["text_repeat"]["times"])
    return lzma.decompress((DATA / point["text_file"]).read_bytes()).decode("utf-8")


TEXTS = {point["id"]: point_text(point) for point in POINTS}


@pytest.mark.parametrize("point", POINTS, ids=[p["id"] for p in POINTS])
def test_reference_texts_are_the_counted_ones(point: dict[str, Any]) -> None:
    text = TEXTS[point["id"]]
    assert len(text) == point["chars"]
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == point["sha256"]
    assert point["source"] and point["derivation"] and point["split"] in {"fit", "held_out", "check"}


@pytest.mark.parametrize("point", POINTS, ids=[p["id"] for p in POINTS])
def test_estimates_meet_the_goals_on_every_reference_point(point: dict[str, Any]) -> None:
    ratio = TokenEstimator().text(TEXTS[point["id"]]) / point["tokens"]
    assert ratio >= NEVER_LOW
    if point["kind"] in {"prose", "code", "json"}:
        assert abs(ratio - 1) <= CLOSE


def test_every_goal_kind_has_a_held_out_point() -> None:
    held = {p["kind"] for p in POINTS if p["split"] == "held_out"}
    assert {"prose", "code"} <= held


def fitted_factors(points: list[dict[str, Any]]) -> tuple[float, float]:
    """The calibration's documented procedure, on these points: the (prose, code) pair, in 0.005
    steps, with the smallest largest relative error (ties: the smallest sum of squared log errors)."""
    unit = dataclasses.replace(TokenEstimator().calibration, prose=1.0, code=1.0)
    code_share = dataclasses.replace(unit, prose=0.0, code=1.0)
    # Raw pieces and code share do not depend on the factors: measure each text once.
    measured = [
        (TokenEstimator(calibration=unit).text(text), code_share.factor(text), point["tokens"])
        for point in points
        for text in [TEXTS[point["id"]]]
    ]
    steps = [1 + i / 200 for i in range(60)]
    best: tuple[tuple[float, float], float, float] | None = None
    for prose, code in itertools.product(steps, steps):
        errors = [math.log(round(raw * (prose + (code - prose) * c)) / real) for raw, c, real in measured]
        key = (round(max(map(abs, errors)), 4), sum(e * e for e in errors))
        if best is None or key < best[0]:
            best = (key, prose, code)
    assert best is not None
    return best[1], best[2]


def fitted_json_factor(points: list[dict[str, Any]]) -> float:
    """The JSON factor by the same rule (0.005 steps, smallest largest relative error), the others fixed."""
    shipped = TokenEstimator().calibration

    def key(factor: float) -> tuple[float, float]:
        estimator = TokenEstimator(calibration=dataclasses.replace(shipped, json=factor))
        errors = [math.log(estimator.text(TEXTS[p["id"]]) / p["tokens"]) for p in points]
        return round(max(map(abs, errors)), 4), sum(e * e for e in errors)

    return min((1 + i / 200 for i in range(-20, 21)), key=key)


def test_shipped_factors_are_the_fit_of_the_fit_split_and_hold_on_held_out_points() -> None:
    shipped = TokenEstimator().calibration
    fit = [p for p in POINTS if p["split"] == "fit" and p["kind"] in {"prose", "code"}]
    prose, code = fitted_factors(fit)
    assert (prose, code) == pytest.approx((shipped.prose, shipped.code))
    json_fit = [p for p in POINTS if p["split"] == "fit" and p["kind"] == "json"]
    assert json_fit and fitted_json_factor(json_fit) == pytest.approx(shipped.json)
    for point in POINTS:
        if point["split"] == "held_out":
            ratio = TokenEstimator().text(TEXTS[point["id"]]) / point["tokens"]
            assert abs(ratio - 1) <= CLOSE, point["id"]


def test_json_takes_its_factor_and_prose_and_code_do_not() -> None:
    calibration = TokenEstimator().calibration
    tool = {"name": "f", "description": "Find it.", "input_schema": {"type": "object", "properties": {}}}
    assert calibration.factor(json.dumps(tool)) == calibration.json
    for point in POINTS:
        if point["kind"] in {"prose", "code"}:  # not one quoted key among them: their factors stand
            text = TEXTS[point["id"]]
            unjson = dataclasses.replace(calibration, json=5.0)
            assert calibration.factor(text) == unjson.factor(text), point["id"]


def test_repetition_is_not_a_discount() -> None:
    # A tokenizer does not merge across repeats: 'Ab' * 4000 is 4,001 real tokens, once estimated as 1,999.
    est = TokenEstimator()
    assert est.text("Ab" * 4000) >= NEVER_LOW * 4001
    assert est.text("word " * 1000) == pytest.approx(1000 * est.calibration.prose, rel=0.01)
