"""pcache_magic: see and steer Anthropic prompt caching from a Jupyter notebook.

`%load_ext pcache_magic` registers the cell magics; `Session` is the same
conversation in plain Python.  Offline (no `ANTHROPIC_API_KEY`), calls go to a
built-in emulator of the Messages API that follows the real caching rules.

Names are imported lazily so `import pcache_magic` stays cheap: the SDK and
the widgets load only when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .analysis.diagnose import explain
    from .analysis.savings import money, what_if
    from .core.conversation import CacheControl
    from .emulator import Emulator
    from .ipython.extension import current_session, load_ipython_extension, unload_ipython_extension
    from .session.guide_messages import (
        AnthropicFunctionExecutionResultMessage,
        AnthropicSystemMessage,
        AnthropicUserMessage,
        AssistantMessage,
        CacheUsage,
        CreateResult,
        FunctionCall,
        FunctionExecutionResult,
        FunctionExecutionResultMessage,
        GuideMessage,
        RequestUsage,
        SystemMessage,
        UserMessage,
    )
    from .session.session import CallInProgress, PreflightError, Session
    from .view.panel import CachePanel

_LAZY: dict[str, str] = {
    "current_session": ".ipython.extension",
    "load_ipython_extension": ".ipython.extension",
    "unload_ipython_extension": ".ipython.extension",
    "CacheControl": ".core.conversation",
    "Emulator": ".emulator",
    "AnthropicFunctionExecutionResultMessage": ".session.guide_messages",
    "AnthropicSystemMessage": ".session.guide_messages",
    "AnthropicUserMessage": ".session.guide_messages",
    "AssistantMessage": ".session.guide_messages",
    "CacheUsage": ".session.guide_messages",
    "CreateResult": ".session.guide_messages",
    "FunctionCall": ".session.guide_messages",
    "FunctionExecutionResult": ".session.guide_messages",
    "FunctionExecutionResultMessage": ".session.guide_messages",
    "GuideMessage": ".session.guide_messages",
    "RequestUsage": ".session.guide_messages",
    "SystemMessage": ".session.guide_messages",
    "UserMessage": ".session.guide_messages",
    "CallInProgress": ".session.session",
    "PreflightError": ".session.session",
    "Session": ".session.session",
    "explain": ".analysis.diagnose",
    "money": ".analysis.savings",
    "what_if": ".analysis.savings",
    "CachePanel": ".view.panel",
}

__all__ = [
    "AnthropicFunctionExecutionResultMessage",
    "AnthropicSystemMessage",
    "AnthropicUserMessage",
    "AssistantMessage",
    "CacheControl",
    "CachePanel",
    "CacheUsage",
    "CallInProgress",
    "CreateResult",
    "Emulator",
    "FunctionCall",
    "FunctionExecutionResult",
    "FunctionExecutionResultMessage",
    "GuideMessage",
    "PreflightError",
    "RequestUsage",
    "Session",
    "SystemMessage",
    "UserMessage",
    "__version__",
    "current_session",
    "explain",
    "load_ipython_extension",
    "money",
    "unload_ipython_extension",
    "what_if",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pcache_magic' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
