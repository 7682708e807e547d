"""validate_request: valid bodies of every SDK shape pass; each rule fails with the real API's answer."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from _images import PNG_1X1_B64
from anthropic.types import (
    CacheControlEphemeralParam,
    DiagnosticsParam,
    DocumentBlockParam,
    ImageBlockParam,
    MessageParam,
    MetadataParam,
    RedactedThinkingBlockParam,
    SearchResultBlockParam,
    TextBlockParam,
    ThinkingBlockParam,
    ThinkingConfigParam,
    ToolChoiceParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
)

from pcache_magic.emulator.errors import ApiError
from pcache_magic.emulator.validate import validate_request

MODEL = "claude-sonnet-4-5"
BOTH_MODES = "claude-sonnet-4-6"  # takes manual and adaptive thinking (MODEL: manual only)
CC: CacheControlEphemeralParam = {"type": "ephemeral"}
CC_1H: CacheControlEphemeralParam = {"type": "ephemeral", "ttl": "1h"}
TEXT: TextBlockParam = {"type": "text", "text": "Hello", "cache_control": CC}
CITED: TextBlockParam = {
    "type": "text",
    "text": "The sky is blue.",
    "citations": [
        {
            "type": "char_location",
            "cited_text": "blue",
            "document_index": 0,
            "document_title": None,
            "start_char_index": 0,
            "end_char_index": 4,
        }
    ],
}
IMAGE: ImageBlockParam = {
    "type": "image",
    "source": {
        "type": "base64",
        "media_type": "image/png",
        "data": PNG_1X1_B64,
    },
    "cache_control": CC_1H,
}
IMAGE_URL: ImageBlockParam = {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}}
IMAGE_FILE: ImageBlockParam = {"type": "image", "source": {"type": "file", "file_id": "file_1"}}
PDF: DocumentBlockParam = {
    "type": "document",
    "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
    "title": "Paper",
    "context": "A paper",
    "citations": {"enabled": True},
    "cache_control": CC,
}
PLAIN_DOC: DocumentBlockParam = {
    "type": "document",
    "source": {"type": "text", "media_type": "text/plain", "data": "plain text"},
}
CONTENT_DOC: DocumentBlockParam = {
    "type": "document",
    "source": {"type": "content", "content": [{"type": "text", "text": "chunk"}, IMAGE_URL]},
}
URL_DOC: DocumentBlockParam = {
    "type": "document",
    "source": {"type": "url", "url": "https://x/a.pdf"},
}
SEARCH: SearchResultBlockParam = {
    "type": "search_result",
    "source": "https://x",
    "title": "X",
    "content": [{"type": "text", "text": "found"}],
}
THINKING: ThinkingBlockParam = {"type": "thinking", "thinking": "Let me see.", "signature": "sig"}
REDACTED: RedactedThinkingBlockParam = {"type": "redacted_thinking", "data": "opaque"}
TOOL_USE: ToolUseBlockParam = {
    "type": "tool_use",
    "id": "toolu_1",
    "name": "get_weather",
    "input": {"city": "Paris"},
    "cache_control": CC,
}
TOOL_RESULT: ToolResultBlockParam = {
    "type": "tool_result",
    "tool_use_id": "toolu_1",
    "content": [{"type": "text", "text": "20C"}, IMAGE_URL, PLAIN_DOC, SEARCH],
    "is_error": False,
    "cache_control": CC,
}
WEATHER: ToolParam = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    "cache_control": CC,
}


def body(*messages: Any, **fields: Any) -> dict[str, Any]:
    """A create body, valid unless told otherwise: `fields` add or replace top-level keys, and
    None removes one. Messages are Any because the error table passes malformed ones."""
    out: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 2048,
        "messages": list(messages) or [{"role": "user", "content": "Hi"}],
    }
    out.update(fields)
    return {k: v for k, v in out.items() if v is not None}


def user(*content: Any) -> MessageParam:
    return {"role": "user", "content": list(content)}


def assistant(*content: Any) -> MessageParam:
    return {"role": "assistant", "content": list(content)}


def known(model: str) -> bool:
    return model.startswith("claude-")


def check(b: object, counting: bool = False) -> None:
    validate_request(b, known_model=known, counting=counting)


# -- valid bodies --------------------------------------------------------------------------------

THINKING_CONFIGS: list[ThinkingConfigParam] = [
    {"type": "enabled", "budget_tokens": 1024, "display": "summarized"},
    {"type": "disabled"},
    {"type": "adaptive"},
]
TOOL_CHOICES: list[ToolChoiceParam] = [
    {"type": "auto", "disable_parallel_tool_use": True},
    {"type": "any"},
    {"type": "tool", "name": "get_weather"},
    {"type": "none"},
]
DIAGNOSTICS: DiagnosticsParam = {"previous_message_id": None}
METADATA: MetadataParam = {"user_id": "u-1"}

VALID: dict[str, dict[str, Any]] = {
    "minimal": body(),
    "every user block": body(
        user(TEXT, CITED, IMAGE, IMAGE_URL, IMAGE_FILE, PDF, PLAIN_DOC, CONTENT_DOC, URL_DOC, SEARCH)
    ),
    "tool round trip": body(
        {"role": "user", "content": "What is the weather?"},
        assistant(THINKING, REDACTED, {"type": "text", "text": "Checking."}, TOOL_USE),
        user(TOOL_RESULT, {"type": "tool_result", "tool_use_id": "toolu_1", "content": "20C"}),
        tools=[WEATHER],
    ),
    "server tool blocks": body(
        {"role": "user", "content": "Search it"},
        assistant(
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        ),
        user({"type": "container_upload", "file_id": "file_1"}),
        tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
    ),
    "system string": body(system="You are terse."),
    "system blocks": body(system=[TEXT, {"type": "text", "text": "More", "cache_control": CC_1H}]),
    "system role message": body({"role": "system", "content": "Be brief."}, user(TEXT)),
    "prefill": body(user(TEXT), {"role": "assistant", "content": "The answer is ("}),
    "empty prefill": body(user(TEXT), {"role": "assistant", "content": ""}),
    "empty prefill list": body(user(TEXT), assistant()),
    "top-level cache_control": body(cache_control=CC_1H),
    "all optional fields": body(
        diagnostics=DIAGNOSTICS,
        metadata=METADATA,
        output_config={"effort": "high", "format": {"type": "json_schema", "schema": {}}},
        stop_sequences=["END"],
        stream=False,
        temperature=0.5,
        top_p=1,
        top_k=5,
        service_tier="auto",
        speed="fast",
        container="container_1",
        inference_geo=None,
    ),
    "pre-warming": body(max_tokens=0, tools=[WEATHER], tool_choice={"type": "auto"}),
    "strict custom tool": body(tools=[{**WEATHER, "type": "custom", "strict": True}]),
    "tool schema with more JSON Schema": body(  # the SDK's InputSchema allows extra keywords
        tools=[
            {
                "name": "weather",
                "input_schema": {
                    "$defs": {"Unit": {"enum": ["c", "f"], "type": "string"}},
                    "type": "object",
                    "properties": {"unit": {"$ref": "#/$defs/Unit"}},
                    "required": ["unit"],
                    "additionalProperties": False,
                },
            }
        ]
    ),
    "tool schema properties null": body(
        tools=[{"name": "t", "input_schema": {"type": "object", "properties": None}}]
    ),
    "custom tool type null": body(tools=[{**WEATHER, "type": None}]),  # Optional in the SDK
    "system role blocks": body({"role": "system", "content": [TEXT]}, user(TEXT)),
    "container object": body(container={"id": "container_1", "skills": None}),
    "web search results": body(
        {"role": "user", "content": "Search it"},
        assistant(
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"q": "x"}},
            {
                "type": "web_search_tool_result",
                "tool_use_id": "srvtoolu_1",
                "content": [
                    {"type": "web_search_result", "url": "https://x", "title": "X", "encrypted_content": "e"}
                ],
            },
        ),
        tools=[{"type": "web_search_20250305", "name": "web_search"}],
    ),
    "sampling fields": body(temperature=0, top_k=0, top_p=0.5),
    **{f"thinking {t['type']}": body(thinking=t, model=BOTH_MODES) for t in THINKING_CONFIGS},
    **{f"tool_choice {c['type']}": body(tools=[WEATHER], tool_choice=c) for c in TOOL_CHOICES},
    # the settings of the cache invalidation table (core.cache_settings), as SDK 2.16 types them
    "deferred tool": body(
        tools=[WEATHER, {"name": "later", "input_schema": {"type": "object"}, "defer_loading": True}]
    ),
    "citations": body(
        user(
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "A fact."},
                "citations": {"enabled": True},
            },
            {"type": "text", "text": "Cite it."},
        )
    ),
    "speed standard effort max": body(speed="standard", output_config={"effort": "max"}),
    "adaptive thinking with a forced tool": body(
        tools=[WEATHER], tool_choice={"type": "any"}, thinking={"type": "adaptive"}, model=BOTH_MODES
    ),
    "thinking at temperature 1": body(temperature=1, thinking={"type": "enabled", "budget_tokens": 1024}),
}


@pytest.mark.parametrize("b", VALID.values(), ids=VALID.keys())
def test_valid_bodies_pass_and_are_not_modified(b: dict[str, Any]) -> None:
    before = copy.deepcopy(b)
    check(b)
    assert b == before


def test_valid_count_tokens_body() -> None:
    b = body(tools=[WEATHER], tool_choice={"type": "auto"}, thinking=THINKING_CONFIGS[0])
    del b["max_tokens"]
    check(b, counting=True)


# -- errors --------------------------------------------------------------------------------------

EMPTY_TEXT_CC: TextBlockParam = {"type": "text", "text": "", "cache_control": CC}
NOT_EMPTY = "all messages must have non-empty content except for the optional final assistant message"
PREWARM = "max_tokens: 0 (cache pre-warming) cannot be combined with "
TAGS = "found using 'type' does not match any of the expected tags:"
BLOCK_TAGS = (
    "'text', 'image', 'document', 'search_result', 'thinking', 'redacted_thinking', 'tool_use',"
    " 'tool_result', 'server_tool_use', 'web_search_tool_result', 'web_fetch_tool_result',"
    " 'code_execution_tool_result', 'bash_code_execution_tool_result',"
    " 'text_editor_code_execution_tool_result', 'tool_search_tool_result', 'container_upload'"
)
BUDGET = (
    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation"
    " at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
    "#max-tokens-and-context-window-size"
)

ERRORS: list[tuple[str, object, str]] = [
    # the body and its required fields
    ("not an object", [], "body: Input should be a valid dictionary"),
    ("no model", body(model=None), "model: Field required"),
    ("model not str", body(model=5), "model: Input should be a valid string"),
    ("no max_tokens", body(max_tokens=None), "max_tokens: Field required"),
    ("max_tokens bool", body(max_tokens=True), "max_tokens: Input should be a valid integer"),
    ("max_tokens float", body(max_tokens=1.5), "max_tokens: Input should be a valid integer"),
    (
        "max_tokens < 0",
        body(max_tokens=-1),
        "max_tokens: Input should be greater than or equal to 0",
    ),
    ("no messages", body(messages=None), "messages: Field required"),
    ("messages not list", body(messages={}), "messages: Input should be a valid list"),
    ("messages empty", body(messages=[]), "messages: at least one message is required"),
    ("unknown top key", body(temprature=1), "temprature: Extra inputs are not permitted"),
    # messages
    ("message not dict", body("hi"), "messages.0: Input should be a valid dictionary"),
    (
        "bad role",
        body({"role": "tool", "content": "x"}),
        "messages.0.role: Input should be 'user', 'assistant' or 'system'",
    ),
    ("no role", body({"content": "x"}), "messages.0.role: Field required"),
    ("no content", body({"role": "user"}), "messages.0.content: Field required"),
    (
        "message extra",
        body({"role": "user", "content": "x", "name": "bob"}),
        "messages.0.name: Extra inputs are not permitted",
    ),
    (
        "content type",
        body({"role": "user", "content": 5}),
        "messages.0.content: Input should be a valid string or a list of content blocks",
    ),
    (
        "block not dict",
        body(user("x")),
        "messages.0.content.0: Input should be a valid dictionary or object to extract fields from",
    ),
    (
        "block no type",
        body(user({"text": "x"})),
        "messages.0.content.0: Unable to extract tag using discriminator 'type'",
    ),
    (
        "block unknown type",
        body(user({"type": "input_text", "text": "x"})),
        f"messages.0.content.0: Input tag 'input_text' {TAGS} {BLOCK_TAGS}",
    ),
    (
        "text missing",
        body(user({"type": "text"})),
        "messages.0.content.0.text.text: Field required",
    ),
    (
        "text not str",
        body(user({"type": "text", "text": 1})),
        "messages.0.content.0.text.text: Input should be a valid string",
    ),
    (
        "block extra key",
        body(user({**TEXT, "id": "x"})),
        "messages.0.content.0.text.id: Extra inputs are not permitted",
    ),
    (
        "system role takes text only",
        body({"role": "system", "content": [IMAGE]}, user(TEXT)),
        f"messages.0.content.0: Input tag 'image' {TAGS} 'text'",
    ),
    ("empty content str", body({"role": "user", "content": ""}), "messages.0: " + NOT_EMPTY),
    ("empty content list", body(user(TEXT), assistant(), user(TEXT)), "messages.1: " + NOT_EMPTY),
    (
        "empty text block",
        body(user({"type": "text", "text": ""})),
        "messages: text content blocks must be non-empty",
    ),
    (
        "blank text block",
        body(user({"type": "text", "text": " \n"})),
        "messages: text content blocks must contain non-whitespace text",
    ),
    (
        "blank content str",
        body({"role": "user", "content": "  "}),
        "messages: text content blocks must contain non-whitespace text",
    ),
    (
        "prefill trailing space",
        body(user(TEXT), {"role": "assistant", "content": "Sure, "}),
        "messages: final assistant content cannot end with trailing whitespace",
    ),
    (
        "prefill blank",
        body(user(TEXT), assistant({"type": "text", "text": " "})),
        "messages: final assistant content cannot end with trailing whitespace",
    ),
    (
        "prefill empty block",
        body(user(TEXT), assistant({"type": "text", "text": ""})),
        "messages: text content blocks must be non-empty",
    ),
    # blocks in the wrong turn
    (
        "tool_use from user",
        body(user(TOOL_USE), tools=[WEATHER]),
        "messages.0.content.0: `tool_use` blocks can only be in `assistant` messages",
    ),
    (
        "thinking from user",
        body(user(THINKING)),
        "messages.0.content.0: `thinking` blocks can only be in `assistant` messages",
    ),
    (
        "redacted from user",
        body(user(REDACTED)),
        "messages.0.content.0: `redacted_thinking` blocks can only be in `assistant` messages",
    ),
    (
        "tool_result from assistant",
        body(user(TEXT), assistant(TOOL_RESULT), user(TEXT)),
        "messages.1.content.0: `tool_result` blocks can only be in `user` messages",
    ),
    (
        "image from assistant",
        body(user(TEXT), assistant(IMAGE), user(TEXT)),
        "messages.1.content.0: `image` blocks can only be in `user` messages",
    ),
    (
        "document from assistant",
        body(user(TEXT), assistant(PDF), user(TEXT)),
        "messages.1.content.0: `document` blocks can only be in `user` messages",
    ),
    # block shapes
    (
        "tool_use no input",
        body(user(TEXT), assistant({**TOOL_USE, "input": None}), user(TEXT)),
        "messages.1.content.0.tool_use.input: Input should be a valid dictionary",
    ),
    (
        "tool_result content",
        body(user({**TOOL_RESULT, "content": [THINKING]})),
        f"messages.0.content.0.tool_result.content.0: Input tag 'thinking' {TAGS} 'text', 'image',"
        " 'search_result', 'document', 'tool_reference', 'browser_state'",
    ),
    (
        "tool_result is_error",
        body(user({**TOOL_RESULT, "is_error": "no"})),
        "messages.0.content.0.tool_result.is_error: Input should be a valid boolean",
    ),
    (
        "image media type",
        body(
            user(
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/bmp", "data": "x"},
                }
            )
        ),
        "messages.0.content.0.image.source.base64.media_type:"
        " Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
    ),
    (
        "image no data",
        body(user({"type": "image", "source": {"type": "base64", "media_type": "image/png"}})),
        "messages.0.content.0.image.source.base64.data: Field required",
    ),
    (
        "image url missing",
        body(user({"type": "image", "source": {"type": "url"}})),
        "messages.0.content.0.image.source.url.url: Field required",
    ),
    (
        "image no source",
        body(user({"type": "image"})),
        "messages.0.content.0.image.source: Field required",
    ),
    (
        "pdf media type",
        body(
            user(
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "text/plain", "data": "x"},
                }
            )
        ),
        "messages.0.content.0.document.source.base64.media_type: Input should be 'application/pdf'",
    ),
    (
        "text doc media type",
        body(
            user(
                {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/html", "data": "x"},
                }
            )
        ),
        "messages.0.content.0.document.source.text.media_type: Input should be 'text/plain'",
    ),
    (
        "content doc",
        body(user({"type": "document", "source": {"type": "content", "content": [PDF]}})),
        "messages.0.content.0.document.source.content.content.0:"
        f" Input tag 'document' {TAGS} 'text', 'image'",
    ),
    (
        "thinking no signature",
        body(user(TEXT), assistant({"type": "thinking", "thinking": "x"})),
        "messages.1.content.0.thinking.signature: Field required",
    ),
    # cache_control, wherever it is
    (
        "cc type",
        body(user({**TEXT, "cache_control": {"type": "persistent"}})),
        "messages.0.content.0.text.cache_control.type: Input should be 'ephemeral'",
    ),
    (
        "cc ttl",
        body(user({**TEXT, "cache_control": {"type": "ephemeral", "ttl": "10m"}})),
        "messages.0.content.0.text.cache_control.ttl: Input should be '5m' or '1h'",
    ),
    (
        "cc no type",
        body(user({**TEXT, "cache_control": {"ttl": "5m"}})),
        "messages.0.content.0.text.cache_control.type: Field required",
    ),
    (
        "cc extra",
        body(user({**TEXT, "cache_control": {"type": "ephemeral", "scope": "x"}})),
        "messages.0.content.0.text.cache_control.scope: Extra inputs are not permitted",
    ),
    (
        "cc not dict",
        body(user({**TEXT, "cache_control": "ephemeral"})),
        "messages.0.content.0.text.cache_control: Input should be a valid dictionary",
    ),
    (
        "cc top level",
        body(cache_control={"type": "ephemeral", "ttl": "1d"}),
        "cache_control.ttl: Input should be '5m' or '1h'",
    ),
    (
        "cc on tool",
        body(tools=[{**WEATHER, "cache_control": {"type": "auto"}}]),
        "tools.0.cache_control.type: Input should be 'ephemeral'",
    ),
    (
        "cc on system",
        body(system=[{**TEXT, "cache_control": {"type": "x"}}]),
        "system.0.cache_control.type: Input should be 'ephemeral'",
    ),
    (
        "cc on image",
        body(user({**IMAGE, "cache_control": {"type": "x"}})),
        "messages.0.content.0.image.cache_control.type: Input should be 'ephemeral'",
    ),
    (
        "cc on tool_result",
        body(user({**TOOL_RESULT, "cache_control": {"type": "ephemeral", "ttl": 5}})),
        "messages.0.content.0.tool_result.cache_control.ttl: Input should be '5m' or '1h'",
    ),
    (
        "cc on nested text",
        body(user({**TOOL_RESULT, "content": [{"type": "text", "text": "x", "cache_control": {}}]})),
        "messages.0.content.0.tool_result.content.0.text.cache_control.type: Field required",
    ),
    (
        "cc inside a tool_result",  # the API's words (caozhiyuan/copilot-api#241, langchain#34920)
        body(user({**TOOL_RESULT, "content": [{"type": "text", "text": "20C"}, TEXT]})),
        "messages.0.content.0.tool_result.content.1.cache_control: cache_control may not be specified"
        " within `tool_result.content`. Instead, place it directly on `tool_result`",
    ),
    (
        "cc on empty text",
        body(*[user(TEXT) if i % 2 == 0 else assistant(TEXT) for i in range(29)], user(EMPTY_TEXT_CC)),
        "messages.29.content.0.text: cache_control cannot be set for empty text blocks",
    ),
    (
        "cc on empty system text",
        body(system=[EMPTY_TEXT_CC]),
        "system.0.text: cache_control cannot be set for empty text blocks",
    ),
    (
        "cc on empty tool_result text",
        body(user({**TOOL_RESULT, "content": [EMPTY_TEXT_CC]})),
        "messages.0.content.0.tool_result.content.0.text: cache_control cannot be set for empty text blocks",
    ),
    (
        "cc on thinking",
        body(user(TEXT), assistant({**THINKING, "cache_control": CC})),
        "messages.1.content.0.thinking.cache_control: Extra inputs are not permitted",
    ),
    (
        "cc on redacted thinking",
        body(user(TEXT), assistant({**REDACTED, "cache_control": CC})),
        "messages.1.content.0.redacted_thinking.cache_control: Extra inputs are not permitted",
    ),
    (
        "cc on citation",
        body(user({**CITED, "citations": [{**CITED["citations"][0], "cache_control": CC}]})),
        "messages.0.content.0.text.citations.0.char_location.cache_control: Extra inputs are not permitted",
    ),
    # system
    (
        "system type",
        body(system=5),
        "system: Input should be a valid string or a list of content blocks",
    ),
    (
        "system block type",
        body(system=[{"type": "image", "text": "x"}]),
        "system.0.type: Input should be 'text'",
    ),
    (
        "system empty text",
        body(system=[{"type": "text", "text": ""}]),
        "system: text content blocks must be non-empty",
    ),
    # tools
    ("tools not list", body(tools={}), "tools: Input should be a valid list"),
    ("tool not dict", body(tools=["get_weather"]), "tools.0: Input should be a valid dictionary"),
    (
        "tool no name",
        body(tools=[{"input_schema": {"type": "object"}}]),
        "tools.0.name: Field required",
    ),
    (
        "tool bad name",
        body(tools=[{**WEATHER, "name": "get weather"}]),
        "tools.0.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'",
    ),
    (
        "tool long name",
        body(tools=[{**WEATHER, "name": "x" * 129}]),
        "tools.0.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'",
    ),
    ("tool no schema", body(tools=[{"name": "t"}]), "tools.0.input_schema: Field required"),
    (
        "tool schema type",
        body(tools=[{"name": "t", "input_schema": {"type": "array"}}]),
        "tools.0.input_schema.type: Input should be 'object'",
    ),
    (
        "tool schema no type",
        body(tools=[{"name": "t", "input_schema": {}}]),
        "tools.0.input_schema.type: Field required",
    ),
    (
        "tool schema properties",
        body(tools=[{"name": "t", "input_schema": {"type": "object", "properties": ["city"]}}]),
        "tools.0.input_schema.properties: Input should be a valid dictionary",
    ),
    (
        "tool schema not a dict",
        body(tools=[{"name": "t", "input_schema": "object"}]),
        "tools.0.input_schema: Input should be a valid dictionary",
    ),
    (
        "tool extra",
        body(tools=[{**WEATHER, "parameters": {}}]),
        "tools.0.parameters: Extra inputs are not permitted",
    ),
    (
        "server tool no name",
        body(tools=[{"type": "web_search_20250305"}]),
        "tools.0.name: Field required",
    ),
    # shapes that come with the SDK's types: every server tool and block, not only the ones read
    (
        "server tool name",
        body(tools=[{"type": "web_search_20250305", "name": "search"}]),
        "tools.0.name: Input should be 'web_search'",
    ),
    (
        "server tool field",
        body(tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": "3"}]),
        "tools.0.max_uses: Input should be a valid integer",
    ),
    (
        "server tool extra",
        body(tools=[{"type": "web_search_20250305", "name": "web_search", "depth": 3}]),
        "tools.0.depth: Extra inputs are not permitted",
    ),
    (
        "container type",
        body(container=5),
        "container: Input should be a valid string or a valid dictionary",
    ),
    ("container id", body(container={"id": 5}), "container.id: Input should be a valid string"),
    (
        "tool_result content type",
        body(user({**TOOL_RESULT, "content": 5})),
        "messages.0.content.0.tool_result.content:"
        " Input should be a valid string or a list of content blocks",
    ),
    (
        "web search content type",
        body(user(TEXT), assistant({"type": "web_search_tool_result", "tool_use_id": "s", "content": 5})),
        "messages.1.content.0.web_search_tool_result.content:"
        " Input should be a list of content blocks or a valid dictionary",
    ),
    (
        "web search result",
        body(
            user(TEXT),
            assistant(
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": "s",
                    "content": [{"type": "web_search_result", "url": "https://x", "title": "X"}],
                }
            ),
        ),
        "messages.1.content.0.web_search_tool_result.content.0.web_search_result.encrypted_content:"
        " Field required",
    ),
    (
        "system role message block",
        body({"role": "system", "content": [{"type": "text", "text": 1}]}, user(TEXT)),
        "messages.0.content.0.text.text: Input should be a valid string",
    ),
    (
        "duplicate tools",
        body(tools=[WEATHER, {**WEATHER, "cache_control": None}]),
        "tools: Tool names must be unique.",
    ),
    # tool_choice
    (
        "tool_choice type",
        body(tools=[WEATHER], tool_choice={"type": "required"}),
        f"tool_choice: Input tag 'required' {TAGS} 'auto', 'any', 'tool', 'none'",
    ),
    (
        "tool_choice no name",
        body(tools=[WEATHER], tool_choice={"type": "tool"}),
        "tool_choice.tool.name: Field required",
    ),
    (
        "tool_choice parallel",
        body(tools=[WEATHER], tool_choice={"type": "any", "disable_parallel_tool_use": "yes"}),
        "tool_choice.any.disable_parallel_tool_use: Input should be a valid boolean",
    ),
    (
        "tool_choice none extra",
        body(tools=[WEATHER], tool_choice={"type": "none", "disable_parallel_tool_use": True}),
        "tool_choice.none.disable_parallel_tool_use: Extra inputs are not permitted",
    ),
    (
        "tool_choice unknown tool",
        body(tools=[WEATHER], tool_choice={"type": "tool", "name": "search"}),
        "tool_choice.tool.name: no tool named 'search' in tools",
    ),
    (
        "tool_choice any, no tools",
        body(tool_choice={"type": "any"}),
        "tool_choice: tool_choice may only be specified while providing tools.",
    ),
    (
        "tool_choice tool, no tools",
        body(tools=[], tool_choice={"type": "tool", "name": "x"}),
        "tool_choice: tool_choice may only be specified while providing tools.",
    ),
    # thinking
    (
        "thinking type",
        body(thinking={"type": "on"}),
        f"thinking: Input tag 'on' {TAGS} 'enabled', 'disabled', 'between_tools', 'adaptive'",
    ),
    (
        "thinking no budget",
        body(thinking={"type": "enabled"}),
        "thinking.enabled.budget_tokens: Field required",
    ),
    (
        "thinking budget low",
        body(thinking={"type": "enabled", "budget_tokens": 1023}),
        "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
    ),
    (
        "thinking budget >= max",
        body(max_tokens=1024, thinking={"type": "enabled", "budget_tokens": 1024}),
        BUDGET,
    ),
    (
        "thinking forced tool",
        body(
            tools=[WEATHER], tool_choice={"type": "any"}, thinking={"type": "enabled", "budget_tokens": 1024}
        ),
        "Thinking may not be enabled when tool_choice forces tool use.",
    ),
    (
        "thinking temperature",
        body(temperature=0.5, thinking={"type": "adaptive"}, model=BOTH_MODES),
        "`temperature` may only be set to 1 when thinking is enabled or in adaptive mode",
    ),
    (
        "thinking disabled extra",
        body(thinking={"type": "disabled", "budget_tokens": 2000}),
        "thinking.disabled.budget_tokens: Extra inputs are not permitted",
    ),
    # other top-level fields
    (
        "diagnostics id",
        body(diagnostics={"previous_message_id": 1}),
        "diagnostics.previous_message_id: Input should be a valid string",
    ),
    (
        "diagnostics extra",
        body(diagnostics={"previous_id": "msg_1"}),
        "diagnostics.previous_id: Extra inputs are not permitted",
    ),
    ("stream", body(stream="yes"), "stream: Input should be a valid boolean"),
    (
        "temperature high",
        body(temperature=1.5),
        "temperature: Input should be less than or equal to 1",
    ),
    ("temperature type", body(temperature="0.5"), "temperature: Input should be a valid number"),
    ("top_p low", body(top_p=-0.1), "top_p: Input should be greater than or equal to 0"),
    ("top_k", body(top_k=-1), "top_k: Input should be greater than or equal to 0"),
    ("top_k float", body(top_k=0.5), "top_k: Input should be a valid integer"),
    ("stop_sequences", body(stop_sequences="END"), "stop_sequences: Input should be a valid list"),
    (
        "stop_sequences item",
        body(stop_sequences=["END", 5]),
        "stop_sequences.1: Input should be a valid string",
    ),
    (
        "metadata user_id",
        body(metadata={"user_id": 5}),
        "metadata.user_id: Input should be a valid string",
    ),
    (
        "metadata extra",
        body(metadata={"session": "x"}),
        "metadata.session: Extra inputs are not permitted",
    ),
    (
        "output_config effort",
        body(output_config={"effort": "extreme"}),
        "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'",
    ),
    (
        "output_config extra",
        body(output_config={"verbosity": 1}),
        "output_config.verbosity: Extra inputs are not permitted",
    ),
    # several problems: the first in the API's order of fields wins (required, then by name)
    (
        "stream before system",
        body(stream="yes", system=5),
        "stream: Input should be a valid boolean",
    ),
    (
        "temperature before thinking",
        body(temperature=2, thinking={"type": "on"}),
        "temperature: Input should be less than or equal to 1",
    ),
    # pre-warming
    ("prewarm stream", body(max_tokens=0, stream=True), PREWARM + "stream: true"),
    (
        "prewarm thinking",
        body(max_tokens=0, thinking={"type": "enabled", "budget_tokens": 1024}),
        PREWARM + "thinking enabled",
    ),
    (
        "prewarm format",
        body(max_tokens=0, output_config={"format": {"type": "json_schema", "schema": {}}}),
        PREWARM + "output_config.format",
    ),
    (
        "prewarm tool_choice any",
        body(max_tokens=0, tools=[WEATHER], tool_choice={"type": "any"}),
        PREWARM + "tool_choice of type 'any'",
    ),
    (
        "prewarm tool_choice tool",
        body(max_tokens=0, tools=[WEATHER], tool_choice={"type": "tool", "name": "get_weather"}),
        PREWARM + "tool_choice of type 'tool'",
    ),
    # the first problem wins: structural anywhere before semantic anywhere
    (
        "structural before semantic",
        body({"role": "user", "content": ""}, {"role": "assistant", "content": "x", "id": 1}),
        "messages.1.id: Extra inputs are not permitted",
    ),
    (
        "first semantic wins",
        body(user({"type": "text", "text": ""}), assistant(IMAGE), user(TEXT)),
        "messages: text content blocks must be non-empty",
    ),
]


def assert_invalid(b: object, message: str) -> None:
    """`b` is refused as the API refuses it: 400, invalid_request_error, exactly `message`."""
    with pytest.raises(ApiError) as raised:
        check(b)
    assert (raised.value.status, raised.value.type, raised.value.message) == (
        400,
        "invalid_request_error",
        message,
    )


@pytest.mark.parametrize(("b", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_invalid_bodies_answer_like_the_api(b: object, message: str) -> None:
    assert_invalid(b, message)


def test_a_tool_type_the_sdk_does_not_know_is_refused() -> None:
    """The installed SDK's tool types are the list: one it lacks is refused at its `type`."""
    with pytest.raises(ApiError) as raised:
        check(body(tools=[{"type": "web_search_29990101", "name": "web_search"}]))
    assert raised.value.message.startswith("tools.0.type: Input should be 'custom', 'bash_20250124', ")
    assert "'web_search_20250305'" in raised.value.message


def test_unknown_model_is_404_after_the_body_is_valid() -> None:
    with pytest.raises(ApiError) as raised:
        check(body(model="gpt-4o"))
    assert (raised.value.status, raised.value.type) == (404, "not_found_error")
    assert raised.value.body() == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "model: gpt-4o"},
    }
    with pytest.raises(ApiError) as raised:
        check(body(model="gpt-4o", max_tokens=None))
    assert raised.value.message == "max_tokens: Field required"


COUNT_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("max_tokens", body(), "max_tokens: Extra inputs are not permitted"),
    ("stream", body(max_tokens=None, stream=True), "stream: Extra inputs are not permitted"),
    (
        "metadata",
        body(max_tokens=None, metadata=METADATA),
        "metadata: Extra inputs are not permitted",
    ),
    ("no model", body(max_tokens=None, model=None), "model: Field required"),
    ("messages", body(max_tokens=None, messages=[]), "messages: at least one message is required"),
    ("temperature", body(max_tokens=None, temperature=0.5), "temperature: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("b", "message"), [e[1:] for e in COUNT_ERRORS], ids=[e[0] for e in COUNT_ERRORS])
def test_count_tokens_bodies(b: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiError) as raised:
        check(b, counting=True)
    assert (raised.value.status, raised.value.message) == (400, message)


# -- tool_use / tool_result pairing ------------------------------------------------------------------
# The API checks the pairs last, after the whole body is otherwise valid, with these two messages.
UNANSWERED = (
    "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {ids}."
    " Each `tool_use` block must have a corresponding `tool_result` block in the next message."
)
ORPHAN = (
    "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}."
    " Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
)
NOT_FIRST = (
    "messages.{i}: Did not find {n} tool_result block(s) at the beginning of this message."
    " Messages following tool_use blocks must begin with a matching number of tool_result blocks."
)
ASK: MessageParam = {"role": "user", "content": "What is the weather in Paris, Rome and Oslo?"}


def use(n: int) -> ToolUseBlockParam:
    return {"type": "tool_use", "id": f"toolu_{n}", "name": "get_weather", "input": {"city": f"c{n}"}}


def result(n: int) -> ToolResultBlockParam:
    return {"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": f"{n}0C"}


TOOL_PAIRS_VALID: dict[str, dict[str, Any]] = {
    "the pair": body(ASK, assistant(TOOL_USE), user(TOOL_RESULT), tools=[WEATHER]),
    "the pair, then text after the result": body(
        ASK, assistant(TOOL_USE), user(TOOL_RESULT, {"type": "text", "text": "Go on."}), tools=[WEATHER]
    ),
    "two rounds": body(
        ASK, assistant(use(1)), user(result(1)), assistant(use(2)), user(result(2)), tools=[WEATHER]
    ),
    "parallel uses, all answered, in another order": body(
        ASK,
        assistant({"type": "text", "text": "Checking three cities."}, use(1), use(2), use(3)),
        user(result(3), result(1), result(2)),
        tools=[WEATHER],
    ),
    "an error result answers too": body(
        ASK, assistant(use(1)), user({**result(1), "is_error": True}), tools=[WEATHER]
    ),
}


@pytest.mark.parametrize("b", TOOL_PAIRS_VALID.values(), ids=TOOL_PAIRS_VALID.keys())
def test_answered_tool_uses_pass(b: dict[str, Any]) -> None:
    before = copy.deepcopy(b)
    check(b)
    assert b == before


TOOL_PAIR_ERRORS: list[tuple[str, object, str]] = [
    (  # the tool-use docs: the tool_result blocks come first in the content array, any text after
        "text before the result",
        body(ASK, assistant(TOOL_USE), user({"type": "text", "text": "Here:"}, TOOL_RESULT), tools=[WEATHER]),
        NOT_FIRST.format(i=2, n=1),
    ),
    (
        "parallel uses, text between the results",
        body(ASK, assistant(use(1), use(2)), user(result(1), TEXT, result(2)), tools=[WEATHER]),
        NOT_FIRST.format(i=2, n=2),
    ),
    (
        "missing result",
        body(ASK, assistant(TOOL_USE), user(TEXT), tools=[WEATHER]),
        UNANSWERED.format(i=1, ids="toolu_1"),
    ),
    (
        "missing result, string content",
        body(ASK, assistant(TOOL_USE), {"role": "user", "content": "Never mind."}, tools=[WEATHER]),
        UNANSWERED.format(i=1, ids="toolu_1"),
    ),
    (
        "missing result, later turn",
        body(ASK, assistant(use(1)), user(result(1)), assistant(use(2)), user(TEXT), tools=[WEATHER]),
        UNANSWERED.format(i=3, ids="toolu_2"),
    ),
    (
        "result in a later message",
        body(
            ASK,
            assistant(use(1)),
            user(TEXT),
            assistant({"type": "text", "text": "Waiting."}),
            user(result(1)),
            tools=[WEATHER],
        ),
        UNANSWERED.format(i=1, ids="toolu_1"),
    ),
    (
        "result for another id",
        body(ASK, assistant(use(1)), user(result(2)), tools=[WEATHER]),
        UNANSWERED.format(i=1, ids="toolu_1"),
    ),
    (
        "parallel uses, one missing",
        body(ASK, assistant(use(1), use(2), use(3)), user(result(1), result(3)), tools=[WEATHER]),
        UNANSWERED.format(i=1, ids="toolu_2"),
    ),
    (
        "parallel uses, two missing, listed in order",
        body(ASK, assistant(use(1), use(2), use(3)), user(result(2)), tools=[WEATHER]),
        UNANSWERED.format(i=1, ids="toolu_1, toolu_3"),
    ),
    (
        "orphan result in the first message",
        body(user(result(1)), tools=[WEATHER]),
        ORPHAN.format(i=0, j=0, id="toolu_1"),
    ),
    (
        "orphan result after a text-only reply",
        body(ASK, assistant({"type": "text", "text": "Sunny."}), user(TEXT, result(1)), tools=[WEATHER]),
        ORPHAN.format(i=2, j=1, id="toolu_1"),
    ),
    (
        "orphan result beside a good one",
        body(ASK, assistant(use(1)), user(result(1), result(7)), tools=[WEATHER]),
        ORPHAN.format(i=2, j=1, id="toolu_7"),
    ),
    (
        "orphan result answering an older turn",
        body(
            ASK,
            assistant(use(1)),
            user(result(1)),
            assistant({"type": "text", "text": "Done."}),
            user(result(1)),
            tools=[WEATHER],
        ),
        ORPHAN.format(i=4, j=0, id="toolu_1"),
    ),
    (
        "the earliest broken pair wins",
        body(ASK, assistant(use(1)), user(result(9)), assistant(use(2)), user(TEXT), tools=[WEATHER]),
        UNANSWERED.format(i=1, ids="toolu_1"),
    ),
    (
        "other errors come first",
        body(ASK, assistant(use(1)), user({"type": "text", "text": ""}), tools=[WEATHER]),
        "messages: text content blocks must be non-empty",
    ),
]


@pytest.mark.parametrize(
    ("b", "message"), [e[1:] for e in TOOL_PAIR_ERRORS], ids=[e[0] for e in TOOL_PAIR_ERRORS]
)
def test_unanswered_and_orphan_tool_blocks_are_400(b: object, message: str) -> None:
    assert_invalid(b, message)


def test_an_unanswered_tool_use_is_a_400_on_the_wire() -> None:
    """Through the SDK and the emulator's transport: the same status, type and text; nothing cached."""
    import anthropic

    from pcache_magic.emulator import Emulator

    emu = Emulator()
    b = body(ASK, assistant(use(1), use(2)), user(result(2)), tools=[{**WEATHER, "cache_control": CC}])
    with pytest.raises(anthropic.BadRequestError) as raised:
        emu.client(max_retries=0).messages.create(**b)
    assert raised.value.status_code == 400
    assert raised.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": UNANSWERED.format(i=1, ids="toolu_1")},
        "request_id": raised.value.request_id,
    }
    assert emu.state()["entries"] == []


# -- structured outputs (output_config.format; the checker is core/output_format.py) -------------
STRICT = {
    "type": "object",
    "properties": {"a": {"type": "string"}},
    "required": ["a"],
    "additionalProperties": False,
}


def test_a_json_schema_format_passes() -> None:
    check(body(output_config={"format": {"type": "json_schema", "schema": STRICT}}))
    counting = body(max_tokens=None, output_config={"format": {"type": "json_schema", "schema": STRICT}})
    check(counting, counting=True)


def test_a_format_the_api_refuses_is_its_400() -> None:
    loose = {**STRICT, "additionalProperties": True}
    assert_invalid(
        body(output_config={"format": {"type": "json_schema", "schema": loose}}),
        "output_config.format.schema: For 'object' type,"
        " 'additionalProperties' must be explicitly set to false",
    )
    with pytest.raises(ApiError, match="property 'minimum' is not supported"):
        bounded = {**STRICT, "properties": {"a": {"type": "integer", "minimum": 1}}}
        fmt = {"type": "json_schema", "schema": bounded}
        check(body(max_tokens=None, output_config={"format": fmt}), counting=True)


def test_a_format_with_a_prefill_is_refused() -> None:
    prefill = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "{"}]
    with pytest.raises(ApiError, match="Prefilling the assistant message is not supported"):
        check(body(*prefill, output_config={"format": {"type": "json_schema", "schema": STRICT}}))


def test_a_format_is_refused_when_pre_warming() -> None:
    fmt = {"type": "json_schema", "schema": STRICT}
    assert_invalid(
        body(max_tokens=0, output_config={"format": fmt}),
        "max_tokens: 0 (cache pre-warming) cannot be combined with output_config.format",
    )


# -- thinking modes per model ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "thinking", "message"),
    [
        (
            "claude-sonnet-5",
            {"type": "enabled", "budget_tokens": 1024},
            '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and '
            '"output_config.effort" to control thinking behavior.',
        ),
        (MODEL, {"type": "adaptive"}, '"thinking.type.adaptive" is not supported for this model.'),
        (
            "claude-3-5-haiku-latest",
            {"type": "enabled", "budget_tokens": 1024},
            '"thinking.type.enabled" is not supported for this model.',
        ),
    ],
)
def test_a_thinking_mode_the_model_does_not_take_is_the_api_400(
    model: str, thinking: dict[str, Any], message: str
) -> None:
    assert_invalid(body(model=model, thinking=thinking), message)
    counting = body(model=model, thinking=thinking)
    del counting["max_tokens"]
    with pytest.raises(ApiError, match="is not supported for this model"):
        check(counting, counting=True)


def test_the_modes_a_model_takes_pass_and_disabled_always_does() -> None:
    check(body(model="claude-sonnet-5", thinking={"type": "adaptive"}))
    check(body(model=MODEL, thinking={"type": "enabled", "budget_tokens": 1024}))
    check(body(model="claude-sonnet-5", thinking={"type": "disabled"}))
    check(body(model="claude-3-5-haiku-latest", thinking={"type": "disabled"}))


def test_the_modes_come_from_the_table_given() -> None:
    from pcache_magic.core.models import default_models

    table = default_models().with_overrides({"claude-sonnet-5": {"thinking": {"modes": ["enabled"]}}})
    b = body(model="claude-sonnet-5", thinking={"type": "enabled", "budget_tokens": 1024})
    validate_request(b, known_model=known, models=table)
    with pytest.raises(ApiError, match=r'"thinking\.type\.adaptive" is not supported'):
        validate_request(
            body(model="claude-sonnet-5", thinking={"type": "adaptive"}), known_model=known, models=table
        )


# -- thinking signatures (the emulator's own: an HMAC of the text under the engine's key) ----------
def signed_turns(thought: dict[str, Any], counting: bool = False) -> dict[str, Any]:
    return {
        "model": MODEL,
        **({} if counting else {"max_tokens": 100}),
        "messages": [
            {"role": "user", "content": "Q"},
            {"role": "assistant", "content": [thought, {"type": "text", "text": "A"}]},
            {"role": "user", "content": "Q2"},
        ],
    }


@pytest.mark.parametrize("counting", [False, True])
def test_a_thinking_block_must_carry_the_engines_signature_of_its_text(counting: bool) -> None:
    from pcache_magic.emulator.reply import sign_thought, thinking_key

    key = thinking_key()
    good = {"type": "thinking", "thinking": "Let me see.", "signature": sign_thought(key, "Let me see.")}
    validate_request(
        signed_turns(good, counting), known_model=lambda m: True, counting=counting, thinking_key=key
    )
    wrong = "messages.1.content.0: Invalid `signature` in `thinking` block"
    for bad in (
        {**good, "signature": "sig"},  # forged
        {**good, "signature": ""},  # empty
        {**good, "signature": "é" * 50},  # not even base64
        {**good, "signature": good["signature"] * 100_000},  # huge
        {**good, "thinking": "Let me see!"},  # the text edited
        {**good, "signature": sign_thought(thinking_key(b"another"), "Let me see.")},  # another key
    ):
        with pytest.raises(ApiError) as refused:
            validate_request(
                signed_turns(bad, counting), known_model=lambda m: True, counting=counting, thinking_key=key
            )
        assert (refused.value.status, refused.value.message) == (400, wrong)
    with pytest.raises(
        ApiError, match=r"messages\.1\.content\.0: Invalid `data` in `redacted_thinking` block"
    ):
        validate_request(signed_turns(dict(REDACTED)), known_model=lambda m: True, thinking_key=key)
    validate_request(signed_turns(dict(THINKING)), known_model=lambda m: True)  # no key: not checked
