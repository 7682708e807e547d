"""Strict JSON for the emulator's wire: `core.strict_json`, which the session's store shares."""

from __future__ import annotations

from ..core.strict_json import MAX_DEPTH, dumps, loads

__all__ = ["MAX_DEPTH", "dumps", "loads"]
