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
    PDF_PAGE_TOKENS,
    TokenEstimator,
    image_tokens,
)


def png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


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
