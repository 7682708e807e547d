"""`session_settings`: one `Settings` object the parts share, and `Setting`, its names on the owner."""

from __future__ import annotations

import dataclasses

import pytest

from pcache_magic.core.conversation import Conversation
from pcache_magic.emulator import Emulator
from pcache_magic.session.schema import SavedSettings
from pcache_magic.session.session import Session
from pcache_magic.session.session_settings import CacheMode, Setting, Settings

from _helpers import MODEL


class Owner:
    """An owner of settings, as `Session` is, without the rest of a session."""

    model = Setting[str]()
    cache_mode = Setting[CacheMode]()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings


def test_settings_are_what_a_saved_session_keeps() -> None:
    assert [f.name for f in dataclasses.fields(Settings)] == list(SavedSettings.model_fields)
    assert Settings() == Settings("claude-sonnet-5", 1024, None, "none", True)


def test_a_setting_reads_and_writes_the_shared_settings() -> None:
    shared = Settings(model=MODEL)
    owner, other = Owner(shared), Owner(shared)
    assert owner.model == MODEL
    owner.model, owner.cache_mode = "claude-haiku-4-5", "last"
    assert (shared.model, shared.cache_mode) == ("claude-haiku-4-5", "last")
    assert other.model == "claude-haiku-4-5"  # a part given the same settings sees the change
    assert isinstance(Owner.model, Setting) and Owner.model.name == "model"


def test_the_session_attributes_are_its_settings(emu: Emulator) -> None:
    session = Session(model=MODEL, client=emu.client(), default_ttl="1h", auto_cache=True, diagnostics=False)
    assert session.settings == Settings(MODEL, 1024, "1h", "auto", False)
    session.max_tokens, session.default_ttl = 256, None
    assert (session.settings.max_tokens, session.settings.default_ttl) == (256, None)
    session.restore(Conversation(), [], model="claude-haiku-4-5", cache_mode="last")
    assert (session.settings.model, session.cache_mode) == ("claude-haiku-4-5", "last")
    with pytest.raises(AttributeError, match="no setting 'colour'"):
        session.restore(Conversation(), [], colour="blue")
