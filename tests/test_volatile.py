"""Volatile values in cached blocks are flagged before sending; ordinary prose, code and numbers are not."""

from __future__ import annotations

from typing import Any

import pytest

from pcache_magic.analysis.volatile import ScanMemo, volatile_findings, volatile_values
from pcache_magic.core.prefix import layout
from pcache_magic.core.tokens import TokenEstimator
from pcache_magic.emulator import Emulator
from pcache_magic.session.session import Session
from pcache_magic.session.transport import connect

PROSE = """\
Quarterly review. In 2024 we sold 1,234 units, up 12.5% on 2023, and the margin held at 31%.
The team met at 10:30 in room 4B to go through the numbers; Alice asked why the March figures
(see table 3, rows 7-12) looked low, and Bob pointed out that two shipments slipped to April.

The paper by Smith et al. (2021) reports p < 0.05 on 1,000 samples and a mean of 3.14 ± 0.02.
Version 3.11.7 of the interpreter is required; call +1 555 123 4567 for support. Chapter 12
covers RFC 2616 and ISO 8601, published 2021-03-04, which most readers skip.

Next steps: ship v2.0 by Q3, hire 3 engineers, and cut the build from 14:05 minutes to under 5.
"""

CODE = '''\
def checksum(data: bytes) -> int:
    """CRC-ish: mask with 0xFFFF and mix in the length (see issue #4521)."""
    total = 0
    for i, byte in enumerate(data[:1024]):
        total = (total * 31 + byte + i) & 0xFFFF
    return total ^ len(data)  # e.g. checksum(b"abc") == 0x2f4a


COLORS = {"red": "#ff0000", "teal": "#008080"}
PATH = "data/2024/sales.csv"
'''


def request(system: str, prompt: str = "Question?", *, mark: str = "system") -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": system}
    question: dict[str, Any] = {"type": "text", "text": prompt}
    if mark == "system":
        block["cache_control"] = {"type": "ephemeral"}
    elif mark == "prompt":
        question["cache_control"] = {"type": "ephemeral"}
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "system": [block],
        "messages": [{"role": "user", "content": [question]}],
    }


def findings(params: dict[str, Any], names: dict[str, str] | None = None) -> list[Any]:
    return volatile_findings(params, layout(params, TokenEstimator()), names)


def test_no_false_alarm_on_prose_code_and_numbers() -> None:
    assert list(volatile_values(PROSE)) == []
    assert list(volatile_values(CODE)) == []
    assert findings(request(PROSE + CODE)) == []


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("Current time: 2026-01-05T09:12:33Z.", "timestamp", "2026-01-05T09:12:33Z"),
        ("Log line at 2026-01-05 09:12 done", "timestamp", "2026-01-05 09:12"),
        ("Started 09:12:33 (local).", "time", "09:12:33"),
        ("Today is Monday, January 5, 2026.", "date", "January 5, 2026"),
        ("Report generated on 2026-01-05.", "date", "2026-01-05"),
        (
            "Session 550e8400-e29b-41d4-a716-446655440000 opened",
            "uuid",
            "550e8400-e29b-41d4-a716-446655440000",
        ),
        ("request id 3f9a1c2e7b4d4e8fa1b2c3d4e5f60718", "hex", "3f9a1c2e7b4d4e8fa1b2c3d4e5f60718"),
        ("saved to /tmp/tmpab12cd34/out.csv", "temp-path", "/tmp/tmpab12cd34/out.csv"),
        ("cache at /var/folders/xy/T/abc.txt now", "temp-path", "/var/folders/xy/T/abc.txt"),
        ("seen at 1736068353.123", "epoch", "1736068353.123"),
    ],
)
def test_each_kind_is_found(text: str, kind: str, value: str) -> None:
    found = [(k, v) for k, v, _, _ in volatile_values(text)]
    assert found == [(kind, value)]


def test_a_timestamp_in_a_cached_system_prompt_is_a_warning_naming_the_block() -> None:
    emu = Emulator()
    session = Session(model="claude-sonnet-4-5", connection=connect(emulator=emu))
    session.system("You are careful. Now: 2026-01-05 09:12:33. " + PROSE * 5, cache="5m", name="rules")
    params = session.params()
    lay = session.layout(params)
    found = volatile_findings(params, lay, {"system.0": "rules"})
    assert len(found) == 1
    finding = found[0]
    assert (finding.level, finding.code, finding.block) == ("warning", "volatile", "rules")
    assert "'2026-01-05 09:12:33' at character 22" in finding.message
    assert (
        finding.message.startswith("'rules' (system.0) holds")
        and "(its own marker covers it)" in finding.message
    )
    assert "after the last cache marker" in finding.fix


def test_a_marker_below_the_minimum_covers_nothing() -> None:
    # Its prefix is not cached: the block's warning names the marker that caches it, and a request
    # whose every marker is below the minimum has nothing cached to warn about.
    params = request("Now: 2026-01-05 09:12:33.", mark="system")
    params["system"].append({"type": "text", "text": PROSE * 6, "cache_control": {"type": "ephemeral"}})
    names = {"system.0": "stamp", "system.1": "rules"}
    lay = layout(params, TokenEstimator())
    assert lay.positions[0].cumulative < 1_024 <= lay.positions[1].cumulative
    (found,) = volatile_findings(params, lay, names, minimum=1_024)
    assert "(the marker on 'rules' (system.1) covers it)" in found.message
    assert volatile_findings(params, lay, names, minimum=10**6) == []


def test_the_marker_named_is_the_first_that_covers_the_block() -> None:
    # A later block's marker covers an earlier block too; the warning named the last marker of the
    # request, even for a block with a marker of its own.
    params = request("Now: 2026-01-05 09:12:33. " + PROSE, "Today is 2026-01-05, at 09:12:40.", mark="prompt")
    params["system"].append({"type": "text", "text": PROSE, "cache_control": {"type": "ephemeral"}})
    names = {"system.0": "clock", "system.1": "style", "messages.0.content.0": "question"}
    first, second, _ = findings(params, names)  # the prompt's time of day, then its date
    assert (
        first.message.startswith("'clock' (system.0) holds")
        and "(the marker on 'style' (system.1)" in first.message
    )
    assert (
        second.message.startswith("'question' (messages.0.content.0)") and "(its own marker" in second.message
    )


def test_only_blocks_at_or_before_the_last_breakpoint_are_scanned() -> None:
    volatile = "Now: 2026-01-05T09:12:33Z"
    assert findings(request(PROSE, volatile, mark="system")) == []  # the prompt is not cached
    assert len(findings(request(PROSE, volatile, mark="prompt"))) == 1
    assert findings(request(volatile, mark="none")) == []  # nothing is cached at all
    automatic = {**request(PROSE, volatile, mark="none"), "cache_control": {"type": "ephemeral"}}
    assert len(findings(automatic)) == 1  # automatic caching covers the last block


def test_one_finding_per_kind_and_block_with_a_count() -> None:
    text = "ids: " + " ".join(f"{i:032x}"[:-1] + "a" for i in range(1, 4)) + " at 09:00:01"
    found = findings(request(text))
    assert len(found) == 2
    assert "(and 2 more)" in next(f.message for f in found if "hex" in f.message)


def test_tools_and_tool_results_are_scanned() -> None:
    tool = {
        "name": "fetch",
        "description": "Fetches. Build 2026-01-05T09:12:33Z",
        "input_schema": {"type": "object"},
        "cache_control": {"type": "ephemeral"},
    }
    params: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "tools": [tool],
        "messages": [
            {"role": "user", "content": "run it"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "fetch", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [{"type": "text", "text": "wrote /tmp/run-42/out.json"}],
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
            },
        ],
    }
    found = findings(params, {"tools.0": "fetch tool"})
    assert [f.block for f in found] == ["fetch tool", "messages.2.content.0"]


def test_the_memo_gives_the_same_findings_as_a_fresh_scan() -> None:
    memo = ScanMemo()
    stamp = "Now: 2026-01-05T09:12:33Z"
    cases = [
        request(PROSE + stamp),
        request(PROSE + stamp),  # the same blocks again: from the memo
        request(PROSE, stamp, mark="prompt"),
        request(CODE + stamp, mark="system"),
        {**request(PROSE, stamp, mark="none"), "cache_control": {"type": "ephemeral"}},
    ]
    for params in cases:
        lay = layout(params, TokenEstimator())
        names = {"system.0": "rules", "messages.0.content.0": "question"}
        assert volatile_findings(params, lay, names, memo=memo) == volatile_findings(params, lay, names)
    assert len(memo) > 0


def test_the_memo_never_gives_a_stale_finding_when_a_block_changes() -> None:
    session = Session(model="claude-sonnet-4-5", connection=connect(emulator=Emulator()))

    def volatile() -> list[str]:
        findings, _ = session.check()
        return [f.message for f in findings if f.code == "volatile"]

    session.system(PROSE * 5 + " Generated 2026-01-05 09:12:33.", cache="5m", name="rules")
    first = volatile()
    assert len(first) == 1 and "'2026-01-05 09:12:33'" in first[0]
    assert volatile() == first  # remembered, and the same
    session.system(PROSE * 5 + " Generated on a stable day.", cache="5m", name="rules")
    assert volatile() == []  # the block changed: nothing is left over from its old text
    session.system(PROSE * 5 + " Generated 2026-02-07 10:00:01.", cache="5m", name="rules")
    (again,) = volatile()
    assert "'2026-02-07 10:00:01'" in again and "2026-01-05" not in again
    session.drop("rules")
    session.system(PROSE * 5, name="rules")  # no marker: nothing is cached, nothing is scanned
    assert volatile() == []


def test_the_memo_is_bounded() -> None:
    memo = ScanMemo(size=3)
    for i in range(10):
        params = request(f"{PROSE} Now: 2026-01-05 09:12:{i:02d}.")
        lay = layout(params, TokenEstimator())
        (finding,) = volatile_findings(params, lay, memo=memo)
        assert f"09:12:{i:02d}" in finding.message
    assert len(memo) == 3
