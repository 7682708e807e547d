"""Tests for the model data file and its loader.

The data tests are deliberately specific: they pin the documented minimums
and price multipliers (shared/caching-facts.md), so a wrong figure fails here
rather than showing up as a wrong number in the panel.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import anthropic
import pytest

from pcache_magic.core.models import (
    MODELS_ENV,
    ModelInfo,
    ModelTable,
    ObservedMinimum,
    Prices,
    UnknownModelError,
    default_models,
    keeps_thinking,
    thinking_refusal,
)

SDK_MODEL_IDS: tuple[str, ...] = typing.get_args(typing.get_args(anthropic.types.ModelParam)[0])

OLDER_IDS = {
    "claude-opus-4-1": ["claude-opus-4-1-20250805"],
    "claude-opus-4-0": ["claude-opus-4-20250514"],
    "claude-sonnet-4-0": ["claude-sonnet-4-20250514"],
    "claude-3-7-sonnet-latest": ["claude-3-7-sonnet-20250219"],
    "claude-3-5-haiku-latest": ["claude-3-5-haiku-20241022"],
    "claude-3-haiku-20240307": [],
}

# caching-facts.md, "Minimum cacheable length", model by model.
DOCUMENTED_MINIMUMS = {
    "claude-opus-5": 512,
    "claude-fable-5": 512,
    "claude-mythos-5": 512,
    "claude-opus-4-8": 1024,
    "claude-sonnet-5": 1024,
    "claude-sonnet-4-6": 1024,
    "claude-sonnet-4-5": 1024,
    "claude-opus-4-1": 1024,
    "claude-opus-4-0": 1024,
    "claude-sonnet-4-0": 1024,
    "claude-mythos-preview": 2048,
    "claude-opus-4-7": 2048,
    "claude-3-5-haiku-latest": 2048,
    "claude-opus-4-6": 4096,
    "claude-opus-4-5": 4096,
    "claude-haiku-4-5": 4096,
}

# Minimums filled in by the documented family rule (each note must say so).
FAMILY_MINIMUMS = {
    "claude-fable-5-1": "claude-fable-5",
    "claude-fable-5-2": "claude-fable-5",
    "claude-mythos-5-1": "claude-mythos-5",
    "claude-mythos-5-2": "claude-mythos-5",
    "claude-opus-5-5": "claude-opus-5",
    "claude-sonnet-5-5": "claude-sonnet-5",
    "claude-haiku-5-5": "claude-haiku-4-5",
}

# Documented cheaper cache reads (fraction of base input).
CHEAPER_READS = {
    "claude-fable-5-1": 0.025,
    "claude-mythos-5-1": 0.025,
    "claude-fable-5-2": 0.025,
    "claude-mythos-5-2": 0.025,
    "claude-opus-5-5": 0.05,
    "claude-sonnet-5-5": 0.05,
}

# Models whose cache multipliers differ from 1.25x / 2x / 0.1x on the pricing page.
NON_STANDARD = {
    "claude-3-haiku-20240307": Prices(
        input=0.25, cache_write_5m=0.30, cache_write_1h=0.50, cache_read=0.03, output=1.25
    )
}

# caching-facts.md, "Pricing": (input, output) per million tokens.
DOCUMENTED_IN_OUT = {
    "claude-opus-5": (5, 25),
    "claude-opus-4-8": (5, 25),
    "claude-opus-4-7": (5, 25),
    "claude-opus-4-6": (5, 25),
    "claude-opus-4-5": (5, 25),
    "claude-opus-4-1": (15, 75),
    "claude-sonnet-5": (2, 10),
    "claude-sonnet-4-6": (3, 15),
    "claude-sonnet-4-5": (3, 15),
    "claude-haiku-4-5": (1, 5),
    "claude-3-5-haiku-latest": (0.80, 4),
}


def minimal_entry(model_id: str = "claude-test-1", **changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": model_id,
        "name": "Claude Test 1",
        "aliases": [],
        "min_cache_tokens": 1024,
        "context_window": 200_000,
        "max_output_tokens": 64_000,
        "prices": {
            "input": 1,
            "cache_write_5m": 1.25,
            "cache_write_1h": 2,
            "cache_read": 0.1,
            "output": 5,
        },
        "source": "https://example.invalid/pricing",
        "as_of": "2026-11-25",
        "note": "",
    }
    entry.update(changes)
    return entry


def table_json(*entries: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "as_of": "2026-11-25",
        "sources": {"prices": "https://example.invalid/pricing"},
        "models": list(entries),
    }


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> ModelTable:
    monkeypatch.delenv(MODELS_ENV, raising=False)
    return default_models()


@pytest.fixture
def raw_data() -> dict[str, Any]:
    text = (resources.files("pcache_magic.core") / "data" / "models.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


# -- the packaged data ----------------------------------------------------


def test_packaged_file_is_readable_as_package_data(raw_data: dict[str, Any]) -> None:
    assert raw_data["schema_version"] == 1
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw_data["as_of"])
    assert set(raw_data["sources"]) == {"prices", "minimums", "models", "prefill", "thinking"}
    assert all(url.startswith("https://platform.claude.com/") for url in raw_data["sources"].values())


def test_table_metadata(table: ModelTable, raw_data: dict[str, Any]) -> None:
    assert table.as_of == raw_data["as_of"]
    assert table.sources == raw_data["sources"]
    assert len(table) == len(raw_data["models"]) == len(table.ids())
    assert table.ids() == [entry["id"] for entry in raw_data["models"]]
    assert [info.id for info in table] == table.ids()


def test_sdk_literal_is_not_empty() -> None:
    assert "claude-haiku-4-5-20251001" in SDK_MODEL_IDS
    assert len(SDK_MODEL_IDS) >= 20


@pytest.mark.parametrize("model_id", SDK_MODEL_IDS)
def test_every_sdk_model_id_resolves(table: ModelTable, model_id: str) -> None:
    info = table.get(model_id)
    assert model_id in table
    assert model_id == info.id or model_id in info.aliases


@pytest.mark.parametrize("model_id", [m for m in SDK_MODEL_IDS if re.search(r"-\d{8}$", m)])
def test_dated_sdk_ids_are_aliases_of_the_undated_id(table: ModelTable, model_id: str) -> None:
    undated = re.sub(r"-\d{8}$", "", model_id)
    assert model_id not in table.ids()
    assert table.get(model_id) is table.get(undated)
    assert model_id in table.get(undated).aliases


@pytest.mark.parametrize(("model_id", "aliases"), OLDER_IDS.items())
def test_older_ids_and_their_aliases_resolve(table: ModelTable, model_id: str, aliases: list[str]) -> None:
    assert model_id in table.ids()
    info = table.get(model_id)
    assert list(info.aliases) == aliases
    for alias in aliases:
        assert table.get(alias) is info


@pytest.mark.parametrize(("model_id", "minimum"), DOCUMENTED_MINIMUMS.items())
def test_documented_minimums(table: ModelTable, model_id: str, minimum: int) -> None:
    assert table.get(model_id).min_cache_tokens == minimum


def test_observed_minimum_sits_beside_the_documented_one(table: ModelTable) -> None:
    # Sonnet 4.6: documented 1,024 (kept, the emulator uses it); public reports see caching from ~2,048.
    info = table.get("claude-sonnet-4-6")
    assert info.min_cache_tokens == 1024
    observed = info.observed_min_cache_tokens
    assert observed == ObservedMinimum(
        tokens=2048, source=observed.source, as_of=observed.as_of, note=observed.note
    ) and observed.source.startswith("https://github.com/anthropics/anthropic-sdk-python/issues/")
    for other in table:
        seen = other.observed_min_cache_tokens
        assert seen is None or seen.tokens > other.min_cache_tokens, other.id


@pytest.mark.parametrize(
    "bad",
    [{"tokens": 0}, {"tokens": "2048"}, {"as_of": "soon"}, {"source": ""}, {"extra": 1}],
)
def test_observed_minimum_is_checked_like_the_rest(table: ModelTable, bad: dict[str, Any]) -> None:
    good = {"tokens": 2048, "source": "https://example.invalid/report", "as_of": "2026-01-02"}
    with pytest.raises(ValueError, match="observed_min_cache_tokens"):
        table.with_overrides({"claude-sonnet-4-5": {"observed_min_cache_tokens": {**good, **bad}}})
    added = table.with_overrides({"claude-sonnet-4-5": {"observed_min_cache_tokens": good}})
    assert added.get("claude-sonnet-4-5").observed_min_cache_tokens == ObservedMinimum.model_validate(good)


@pytest.mark.parametrize(("model_id", "family"), FAMILY_MINIMUMS.items())
def test_undocumented_minimums_follow_family_and_say_so(
    table: ModelTable, model_id: str, family: str
) -> None:
    info = table.get(model_id)
    assert info.min_cache_tokens == table.get(family).min_cache_tokens
    assert "Minimum assumed from the" in info.note
    assert "not documented" in info.note


def test_every_minimum_is_either_documented_or_flagged(table: ModelTable) -> None:
    for info in table:
        if info.id not in DOCUMENTED_MINIMUMS:
            assert "Minimum" in info.note and "not documented" in info.note, info.id


def test_prices_are_positive(table: ModelTable) -> None:
    for info in table:
        for field, value in info.prices.model_dump().items():
            assert value > 0, (info.id, field)


@pytest.mark.parametrize("model_id", [m for m in OLDER_IDS if m not in NON_STANDARD])
def test_standard_multipliers_hold_for_older_models(table: ModelTable, model_id: str) -> None:
    prices = table.get(model_id).prices
    assert prices.cache_write_5m == pytest.approx(1.25 * prices.input)
    assert prices.cache_write_1h == pytest.approx(2 * prices.input)
    assert prices.cache_read == pytest.approx(0.1 * prices.input)


def test_cache_writes_are_1_25x_and_2x_unless_noted(table: ModelTable) -> None:
    for info in table:
        if info.id in NON_STANDARD:
            continue
        p = info.prices
        assert p.cache_write_5m == pytest.approx(1.25 * p.input), info.id
        assert p.cache_write_1h == pytest.approx(2 * p.input), info.id


def test_cache_reads_are_0_1x_or_a_documented_cheaper_rate(table: ModelTable) -> None:
    for info in table:
        if info.id in NON_STANDARD:
            continue
        p = info.prices
        fraction = CHEAPER_READS.get(info.id, 0.1)
        assert p.cache_read == pytest.approx(fraction * p.input), info.id
        if fraction != 0.1:
            assert "ache read" in info.note, info.id


@pytest.mark.parametrize(("model_id", "expected"), NON_STANDARD.items())
def test_non_standard_prices_are_exact_and_noted(table: ModelTable, model_id: str, expected: Prices) -> None:
    info = table.get(model_id)
    assert info.prices == expected
    assert "Non-standard" in info.note


@pytest.mark.parametrize(("model_id", "in_out"), DOCUMENTED_IN_OUT.items())
def test_documented_input_and_output_prices(
    table: ModelTable, model_id: str, in_out: tuple[float, float]
) -> None:
    prices = table.get(model_id).prices
    assert (prices.input, prices.output) == pytest.approx(in_out)


def test_opus_5_5_prices_match_the_docs(table: ModelTable) -> None:
    assert table.get("claude-opus-5-5").prices == Prices(
        input=4, cache_write_5m=5, cache_write_1h=8, cache_read=0.2, output=20
    )


def test_limits_are_plausible(table: ModelTable) -> None:
    for info in table:
        assert info.max_output_tokens < info.context_window, info.id
        assert info.min_cache_tokens < info.context_window, info.id
        assert info.context_window in (200_000, 1_000_000), info.id


def test_prefill_is_gone_from_claude_4_6_on(table: ModelTable) -> None:
    # "Prefilling assistant messages returns a 400 error on Claude 4.6 models" (what's new in 4.6).
    for model in (
        "claude-opus-4-6",
        "claude-sonnet-4-6",
        "claude-opus-4-7",
        "claude-sonnet-5",
        "claude-opus-5",
    ):
        assert table.get(model).prefill is False, model
    for model in ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1", "claude-3-haiku-20240307"):
        assert table.get(model).prefill is True, model


def test_provenance_is_recorded(table: ModelTable) -> None:
    for info in table:
        assert info.source.startswith("https://"), info.id
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", info.as_of), info.id
        if not info.source.startswith("https://platform.claude.com/"):
            assert info.note, f"{info.id}: figures from outside platform.claude.com need a note"


# -- lookup and errors ------------------------------------------------------


def test_unknown_model_error_with_suggestion(table: ModelTable) -> None:
    with pytest.raises(UnknownModelError) as excinfo:
        table.get("claude-sonet-4-5")
    err = excinfo.value
    assert isinstance(err, KeyError)
    assert err.model == "claude-sonet-4-5"
    assert err.suggestion == "claude-sonnet-4-5"
    assert str(err) == "Unknown model 'claude-sonet-4-5'. Did you mean 'claude-sonnet-4-5'?"


def test_unknown_model_error_without_suggestion(table: ModelTable) -> None:
    with pytest.raises(UnknownModelError) as excinfo:
        table.get("gpt-4o")
    assert excinfo.value.suggestion is None
    assert str(excinfo.value) == "Unknown model 'gpt-4o'."
    with pytest.raises(KeyError):
        table.get("")


def test_unknown_model_error_survives_pickling() -> None:
    err = pickle.loads(pickle.dumps(UnknownModelError("x", "y")))
    assert (err.model, err.suggestion, str(err)) == (
        "x",
        "y",
        "Unknown model 'x'. Did you mean 'y'?",
    )


def test_suggest(table: ModelTable) -> None:
    assert table.suggest("Claude-Opus-5") == "claude-opus-5"
    assert table.suggest("claude-haiku-4-5-2025100") == "claude-haiku-4-5-20251001"
    assert table.suggest("llama-3") is None
    assert table.suggest("") is None


def test_contains(table: ModelTable) -> None:
    assert "claude-opus-4-20250514" in table
    assert "claude-opus-4" not in table
    assert 42 not in table
    assert None not in table


def test_table_and_entries_are_immutable(table: ModelTable) -> None:
    with pytest.raises(AttributeError):
        table.as_of = "2000-01-01"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        table._models = ()
    table.sources["prices"] = "mutated"
    assert table.sources["prices"] != "mutated"
    info = table.get("claude-opus-5")
    with pytest.raises(ValueError):
        info.min_cache_tokens = 1


# -- from_json / from_file ----------------------------------------------------


def test_from_json_rejects_duplicate_ids_and_aliases() -> None:
    with pytest.raises(ValueError, match=r"duplicate.*'claude-a'"):
        ModelTable.from_json(table_json(minimal_entry("claude-a"), minimal_entry("claude-a")))
    with pytest.raises(ValueError, match=r"'claude-b-1'.*claude-a.*claude-b"):
        ModelTable.from_json(
            table_json(
                minimal_entry("claude-a", aliases=["claude-b-1"]),
                minimal_entry("claude-b", aliases=["claude-b-1"]),
            )
        )


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"min_cache_tokens": 0}, "min_cache_tokens"),
        ({"min_cache_tokens": True}, "min_cache_tokens"),
        ({"context_window": "200000"}, "context_window"),
        ({"as_of": "25/11/2026"}, "as_of"),
        ({"as_of": "2026-02-30"}, "as_of"),
        ({"prices": {"input": -1}}, "prices"),
        ({"colour": "blue"}, "colour"),
        ({"id": "has space"}, "id"),
    ],
)
def test_from_json_validates_entries(change: dict[str, Any], where: str) -> None:
    entry = minimal_entry(**change)
    if "prices" in change:
        entry["prices"] = {**minimal_entry()["prices"], **change["prices"]}
    with pytest.raises(ValueError, match=rf"invalid model table: models\.0\.{where}"):
        ModelTable.from_json(table_json(entry))


def test_from_json_checks_the_schema_version() -> None:
    data = table_json(minimal_entry())
    data["schema_version"] = 2
    with pytest.raises(ValueError, match="schema_version"):
        ModelTable.from_json(data)


def test_from_file_round_trips_the_packaged_file(table: ModelTable) -> None:
    path = resources.files("pcache_magic.core") / "data" / "models.json"
    with resources.as_file(path) as real_path:
        loaded = ModelTable.from_file(real_path)
    assert list(loaded) == list(table)


def test_from_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*not found"):
        ModelTable.from_file(path)


def test_from_file_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"schema_version": 1,\n  "as_of": }', encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*invalid JSON at line 2"):
        ModelTable.from_file(path)


def test_from_file_schema_error_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text(json.dumps(table_json(minimal_entry(max_output_tokens=-5))), encoding="utf-8")
    with pytest.raises(ValueError) as excinfo:
        ModelTable.from_file(str(path))
    message = str(excinfo.value)
    assert message.startswith(str(path))
    assert "models.0.max_output_tokens" in message


# -- with_overrides ---------------------------------------------------------------


def test_partial_override_merges_fields_and_nested_prices(table: ModelTable) -> None:
    before = table.get("claude-opus-5")
    new = table.with_overrides({"claude-opus-5": {"min_cache_tokens": 1024, "prices": {"input": 4}}})
    after = new.get("claude-opus-5")
    assert after.min_cache_tokens == 1024
    assert after.prices.input == 4
    assert after.prices.output == before.prices.output
    assert after.prices.cache_read == before.prices.cache_read
    assert (after.name, after.aliases, after.source) == (before.name, before.aliases, before.source)
    # the original table is untouched, and everything else is carried over
    assert table.get("claude-opus-5") == before
    assert new.ids() == table.ids()
    assert new.as_of == table.as_of and new.sources == table.sources


def test_override_by_alias_reaches_the_canonical_entry(table: ModelTable) -> None:
    new = table.with_overrides({"claude-haiku-4-5-20251001": {"min_cache_tokens": 2048}})
    assert new.get("claude-haiku-4-5").min_cache_tokens == 2048


def test_override_adds_a_complete_new_model(table: ModelTable) -> None:
    entry = minimal_entry("claude-test-1", aliases=["claude-test-1-20270101"])
    del entry["id"]
    new = table.with_overrides({"claude-test-1": entry})
    assert new.ids()[-1] == "claude-test-1"
    assert len(new) == len(table) + 1
    assert new.get("claude-test-1-20270101").min_cache_tokens == 1024
    assert "claude-test-1" not in table


def test_override_accepts_model_info_objects(table: ModelTable) -> None:
    replacement = table.get("claude-sonnet-5").model_copy(update={"note": "checked"})
    added = ModelInfo.model_validate(minimal_entry("claude-test-2"))
    new = table.with_overrides([replacement, added])
    assert new.get("claude-sonnet-5").note == "checked"
    assert new.get("claude-test-2") == added
    assert new.ids().index("claude-sonnet-5") == table.ids().index("claude-sonnet-5")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"claude-test-9": {"name": "Half a model"}},
            r"new model 'claude-test-9'.*min_cache_tokens",
        ),
        (
            {"claude-opus-5": {"prices": {"input": -4}}},
            r"override for 'claude-opus-5'.*prices\.input",
        ),
        ({"claude-opus-5": {"min_cache_tokens": "lots"}}, r"min_cache_tokens"),
        ({"claude-opus-5": {"surprise": 1}}, r"surprise"),
        ({"claude-opus-5": {"id": "claude-opus-9"}}, r"different id"),
        ({"claude-opus-5": 512}, r"must map a model id"),
        ({"claude-opus-5": {"aliases": ["claude-opus-4-8"]}}, r"duplicate.*'claude-opus-4-8'"),
        ([{"id": "claude-opus-5"}, {"id": "claude-opus-5"}], r"more than once"),
        ([{"name": "no id"}], r"string 'id'"),
        ("claude-opus-5", r"not a string"),
    ],
)
def test_invalid_overrides_raise_value_error(table: ModelTable, overrides: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        table.with_overrides(overrides)


def test_whole_entry_named_like_an_alias_clashes(table: ModelTable) -> None:
    clash = ModelInfo.model_validate(minimal_entry("claude-haiku-4-5-20251001"))
    with pytest.raises(ValueError, match=r"duplicate.*claude-haiku-4-5-20251001"):
        table.with_overrides([clash])


# -- default_models and $PCACHE_MODELS ----------------------------------------------


def test_default_models_is_cached(table: ModelTable) -> None:
    assert default_models() is table


def test_env_override_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "my-models.json"
    path.write_text(
        json.dumps(
            [
                {"id": "claude-opus-5", "min_cache_tokens": 1024, "prices": {"input": 4}},
                minimal_entry("claude-test-1"),
            ]
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv(MODELS_ENV, str(path))
    models = default_models()
    assert models.get("claude-opus-5").min_cache_tokens == 1024
    assert models.get("claude-opus-5").prices.input == 4
    assert models.get("claude-opus-5").prices.output == 25
    assert models.get("claude-test-1").name == "Claude Test 1"
    assert default_models() is models  # unchanged file: no re-read

    # An edited file is picked up (keyed on mtime), without touching the packaged table.
    path.write_text(json.dumps({"models": [{"id": "claude-opus-5", "min_cache_tokens": 2048}]}))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    edited = default_models()
    assert edited.get("claude-opus-5").min_cache_tokens == 2048
    assert "claude-test-1" not in edited

    monkeypatch.delenv(MODELS_ENV)
    assert default_models().get("claude-opus-5").min_cache_tokens == 512


def test_env_override_file_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "absent.json"))
    with pytest.raises(ValueError, match=rf"absent\.json \(from \${MODELS_ENV}\): file not found"):
        default_models()


def test_env_override_file_invalid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"id": "claude-opus-5", "min_cache_tokens": 0}]))
    monkeypatch.setenv(MODELS_ENV, str(path))
    with pytest.raises(ValueError, match=r"bad\.json.*claude-opus-5.*min_cache_tokens"):
        default_models()
    path.write_text(json.dumps({"claude-opus-5": {}}))
    os.utime(path, ns=(0, 10**18))
    with pytest.raises(ValueError, match="expected a JSON list"):
        default_models()


def test_empty_env_means_packaged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODELS_ENV, "  ")
    assert default_models().get("claude-opus-5").min_cache_tokens == 512


# -- thinking modes ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model_id", "modes", "keeps"),
    [
        ("claude-sonnet-4-5", ("enabled",), False),
        ("claude-haiku-4-5", ("enabled",), False),
        ("claude-3-7-sonnet-latest", ("enabled",), False),
        ("claude-opus-4-5", ("enabled",), True),
        ("claude-sonnet-4-6", ("enabled", "adaptive"), True),
        ("claude-opus-4-6", ("enabled", "adaptive"), True),
        ("claude-opus-4-7", ("adaptive",), True),
        ("claude-sonnet-5", ("adaptive",), True),
        ("claude-3-5-haiku-latest", (), False),
    ],
)
def test_thinking_modes_and_kept_thinking_as_documented(
    table: ModelTable, model_id: str, modes: tuple[str, ...], keeps: bool
) -> None:
    info = table.get(model_id)
    assert info.thinking is not None
    assert info.thinking.modes == modes
    assert keeps_thinking(info) is keeps


def test_every_packaged_model_says_how_it_thinks_with_source_and_date(table: ModelTable) -> None:
    for info in table:
        assert info.thinking is not None, info.id
        assert info.thinking.source.startswith("https://platform.claude.com/docs/"), info.id
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", info.thinking.as_of)


def test_thinking_refusal_words_the_api_400(table: ModelTable) -> None:
    assert thinking_refusal(table.get("claude-sonnet-5"), "enabled") == (
        '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and '
        '"output_config.effort" to control thinking behavior.'
    )
    assert thinking_refusal(table.get("claude-sonnet-4-5"), "adaptive") == (
        '"thinking.type.adaptive" is not supported for this model.'
    )
    assert thinking_refusal(table.get("claude-3-5-haiku-latest"), "enabled") == (
        '"thinking.type.enabled" is not supported for this model.'
    )
    assert thinking_refusal(table.get("claude-sonnet-4-6"), "enabled") is None
    assert thinking_refusal(table.get("claude-sonnet-5"), "disabled") is None


def test_a_model_without_thinking_facts_is_not_second_guessed(table: ModelTable) -> None:
    bare = table.with_overrides({"claude-sonnet-5": {"thinking": None}}).get("claude-sonnet-5")
    assert thinking_refusal(bare, "enabled") is None
    assert keeps_thinking(bare) and keeps_thinking(None)
    # By id, through the default table; an unknown id keeps what it is sent.
    assert not keeps_thinking("claude-sonnet-4-5-20250929") and keeps_thinking("claude-sonnet-5")
    assert keeps_thinking("claude-unknown-9")


def test_a_thinking_override_is_checked_like_the_rest(table: ModelTable) -> None:
    with pytest.raises(ValueError, match=r"thinking\.modes\.0"):
        table.with_overrides({"claude-sonnet-5": {"thinking": {"modes": ["manual"]}}})
    changed = table.with_overrides({"claude-sonnet-5": {"thinking": {"modes": ["enabled", "adaptive"]}}})
    assert changed.get("claude-sonnet-5").thinking.modes == ("enabled", "adaptive")  # type: ignore[union-attr]
    assert changed.get("claude-sonnet-5").thinking.keeps_earlier  # type: ignore[union-attr]


def test_a_key_typed_as_the_model_is_not_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-ant-api03-" + "abcdefghij" * 4
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    with pytest.raises(UnknownModelError) as caught:
        default_models().get(key)
    error = caught.value
    assert key not in f"{error} {error!r} {error.args} {error.model}"
    assert str(error).startswith("Unknown model '[API key]'.")
    assert str(UnknownModelError("claude-sonet-4-5")) == "Unknown model 'claude-sonet-4-5'."


def test_a_key_split_or_glued_as_the_model_is_not_repeated_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """`%config ClaudeMagics.model = '<key split by a space>'` logs this error, no magic's wrapper."""
    key = "sk-ant-api03-u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8dKLzd"  # no repeats: each piece its own
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    for typed in (f"{key[:26]} {key[26:]}", f"x{key[13:]}", key[13:], f"{key[13:40]}Z"):
        with pytest.raises(UnknownModelError) as caught:
            default_models().get(typed)
        error = caught.value
        said = f"{error} {error!r} {error.args} {error.model}"
        assert not any(key[i : i + 8] in said for i in range(13, len(key) - 7)), said
        assert "[part of the API key]" in str(error)
