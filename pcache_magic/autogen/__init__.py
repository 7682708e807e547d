"""`pcache_magic.autogen`: the public name of `pcache_magic.integrations.autogen`.

from pcache_magic.autogen import CachingAnthropicChatCompletionClient as AnthropicChatCompletionClient
"""

from ..integrations.autogen import (
    AnthropicFunctionExecutionResultMessage,
    AnthropicSystemMessage,
    AnthropicUserMessage,
    CacheControl,
    CacheUsage,
    CachingAnthropicChatCompletionClient,
    CachingCreateResult,
    CachingRequestUsage,
)

__all__ = [
    "AnthropicFunctionExecutionResultMessage",
    "AnthropicSystemMessage",
    "AnthropicUserMessage",
    "CacheControl",
    "CacheUsage",
    "CachingAnthropicChatCompletionClient",
    "CachingCreateResult",
    "CachingRequestUsage",
]
