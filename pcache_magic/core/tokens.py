"""Offline token estimates: deterministic, fast, calibrated, and always labelled *estimated*.

Claude's tokenizer is not public, so offline figures come from an approximation: one regex pass
that cuts text roughly where a BPE tokenizer would (words split at case changes and every 8
letters, numbers in groups of 3, symbols in pairs, CJK in pairs, other non-ASCII per character),
plus a token per line break and per indented line, times a factor for the text's kind fitted to
real counts (`_token_calibration`; the reference points and their sources are
tests/data/token_references.json).  Online, exact counts come from the API (`usage`,
`count_tokens`); this module only fills the gap when there is no API.

Images follow the documented rule (tokens = width * height / 750 after the long edge is scaled
to at most 1568 px); PDF pages cost a documented-range average per page.  Block estimates are
memoized by content digest (`digest.block_digest`) so re-counting a 100k-token conversation on
every call is a dictionary lookup per block.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from ._token_calibration import Calibration, default_calibration
from .digest import block_digest
from .image_bytes import image_size

__all__ = [
    "BLOCK_OVERHEAD",
    "MANY_IMAGES",
    "MANY_IMAGES_EDGE",
    "MAX_IMAGE_BASE64",
    "MAX_IMAGE_EDGE",
    "MAX_MEDIA",
    "MAX_MEDIA_LARGE_CONTEXT",
    "MESSAGE_OVERHEAD",
    "PDF_PAGE_TOKENS",
    "TOOLS_PREAMBLE",
    "TOOL_OVERHEAD",
    "Calibration",
    "TokenEstimator",
    "image_size",
    "image_tokens",
]

#: Roughly where a BPE tokenizer cuts: lower-case runs (after an optional capital) of up to 8
#: letters, capital runs, digits in threes, underscores, CJK in pairs, symbols in pairs, any
#: other non-ASCII character alone.  Whitespace is not matched; line breaks are counted apart.
_PIECES = re.compile(
    r"[A-Z]?[a-z]{1,8}|[A-Z]{1,8}(?![a-z])|\d{1,3}|_+"
    r"|[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af]{1,2}|[^\w\s]{1,2}|[^\x00-\x7f]"
)

#: Tokens the API adds once when any tool is defined (its tool-use system prompt).
TOOLS_PREAMBLE = 300
#: Framing tokens per tool definition.
TOOL_OVERHEAD = 8
#: Framing tokens per message (role and turn markers).
MESSAGE_OVERHEAD = 4
#: Framing tokens per content block.
BLOCK_OVERHEAD = 2
#: Average tokens per PDF page (the docs give 1,500-3,000 for text plus page image).
PDF_PAGE_TOKENS = 2_000
#: Documented long-edge limit before an image is resized.
_MAX_EDGE = 1568
#: Documented upper bound of tokens for one image.
_MAX_IMAGE_TOKENS = 1_600
#: The API refuses (400) an image with a side over `MAX_IMAGE_EDGE` px, and over `MANY_IMAGES_EDGE`
#: px when the request holds more than `MANY_IMAGES` images.  Source: the vision docs, "General
#: limits" (https://platform.claude.com/docs/en/build-with-claude/vision): "The maximal dimensions
#: per image are 8000x8000 px. If you submit more than 20 images in one API request, this limit is
#: reduced to 2000x2000 px."
MAX_IMAGE_EDGE = 8000
MANY_IMAGES = 20
MANY_IMAGES_EDGE = 2000
#: Images (with documents) a request may hold: "100 per request on the API, for models with a
#: 200k-token context window. 600 per request on the API, for all other models" (the vision docs,
#: "Request limits"); over it a 400, "too many images and documents: 104 + 1 > 100"
#: (anthropics/claude-code#23392, 2026; "101 + 0 > 100" in openclaw#13202), before that "Too
#: much media: 0 document pages + 102 images > 100" (anthropics/claude-code#19822, #3397).
MAX_MEDIA, MAX_MEDIA_LARGE_CONTEXT = 100, 600
#: The API refuses (400) a base64 image whose text is longer than this: "image exceeds 5 MB maximum:
#: 5577016 bytes > 5242880 bytes" (wording and figures as recorded in anthropics/claude-code#12167,
#: #2146, #10612).  It counts the base64 text, not the decoded file: a 4 MB file is over it there.
MAX_IMAGE_BASE64 = 5 * 1024 * 1024
#: When a URL image's size is unknown, assume a typical ~1 megapixel image.
_UNKNOWN_IMAGE_TOKENS = _MAX_IMAGE_TOKENS


def _count_text(text: str, calibration: Calibration) -> int:
    """One regex pass plus line breaks and indented lines, times the text's calibrated factor."""
    if not text:
        return 0
    raw = len(_PIECES.findall(text)) + text.count("\n") + text.count("\n ") + text.count("\n\t")
    return max(1, round((raw + calibration.extra_pieces(text)) * calibration.factor(text)))


def image_tokens(width: int, height: int) -> int:
    """Tokens for an image of this pixel size, after the API's documented down-scaling."""
    if width <= 0 or height <= 0:
        return 0
    scale = min(1.0, _MAX_EDGE / max(width, height))
    w, h = width * scale, height * scale
    return min(_MAX_IMAGE_TOKENS, max(1, math.ceil(w * h / 750)))


def _decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return b""


def _pdf_pages(raw: bytes) -> int:
    """Page count of a PDF by its page objects (good enough for an estimate)."""
    return max(1, len(re.findall(rb"/Type\s*/Page(?![s\w])", raw)))


class TokenEstimator:
    """Deterministic token estimates for text, content blocks and tool definitions.

    Instances keep a bounded LRU memo keyed by content digest; share one
    estimator per session or emulator rather than building one per call.
    """

    def __init__(self, memo_size: int = 20_000, calibration: Calibration | None = None) -> None:
        self._memo: OrderedDict[bytes, int] = OrderedDict()
        self._memo_size = memo_size
        self._calibration = calibration or default_calibration()

    @property
    def calibration(self) -> Calibration:
        """The per-kind factors in use (the packaged ones unless one was given)."""
        return self._calibration

    def text(self, text: str) -> int:
        """Estimated tokens of plain text (an estimate: see the module docstring for its accuracy)."""
        return _count_text(text, self._calibration)

    def block(self, block: Mapping[str, Any], digest: bytes | None = None) -> int:
        """Estimated tokens of one content block (text, image, document, tool use or result)."""
        key = digest if digest is not None else block_digest(block)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._remember(key, BLOCK_OVERHEAD + self._content(block))
        return hit

    def tool(self, tool: Mapping[str, Any], digest: bytes | None = None) -> int:
        """Estimated tokens of a tool definition (its JSON, as the model reads it)."""
        key = digest if digest is not None else block_digest(tool)
        hit = self._memo.get(key)
        if hit is None:
            body = {k: v for k, v in tool.items() if k != "cache_control"}
            hit = self._remember(key, TOOL_OVERHEAD + self.text(json.dumps(body, ensure_ascii=False)))
        return hit

    def _remember(self, key: bytes, value: int) -> int:
        self._memo[key] = value
        if len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)
        return value

    def _content(self, block: Mapping[str, Any]) -> int:
        kind = block.get("type")
        if kind == "text":
            return self.text(str(block.get("text", "")))
        if kind == "image":
            return self._image(block.get("source") or {})
        if kind == "document":
            return self._document(block)
        if kind == "tool_use":
            return self.text(str(block.get("name", ""))) + self.text(
                json.dumps(block.get("input", {}), ensure_ascii=False)
            )
        if kind == "tool_result":
            content = block.get("content", "")
            if isinstance(content, str):
                return self.text(content)
            return sum(self.block(b) for b in content if isinstance(b, Mapping))
        if kind == "thinking":
            return self.text(str(block.get("thinking", "")))
        if kind == "redacted_thinking":
            return len(str(block.get("data", ""))) // 4
        return self.text(json.dumps(dict(block), ensure_ascii=False))

    def _image(self, source: Mapping[str, Any]) -> int:
        if source.get("type") == "base64":
            size = image_size(_decode(str(source.get("data", "")))[:65_536])
            if size:
                return image_tokens(*size)
        return _UNKNOWN_IMAGE_TOKENS

    def _document(self, block: Mapping[str, Any]) -> int:
        source = block.get("source") or {}
        extra = self.text(str(block.get("title") or "")) + self.text(str(block.get("context") or ""))
        kind = source.get("type")
        if kind == "text":
            return extra + self.text(str(source.get("data", "")))
        if kind == "content":
            content = source.get("content", "")
            if isinstance(content, str):
                return extra + self.text(content)
            return extra + sum(self.block(b) for b in content if isinstance(b, Mapping))
        if kind == "base64":
            return extra + PDF_PAGE_TOKENS * _pdf_pages(_decode(str(source.get("data", ""))))
        return extra + PDF_PAGE_TOKENS
