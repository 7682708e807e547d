"""The AutoGen model client with the prompt-caching guide's API (public as `pcache_magic.autogen`)."""

from .client import (
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
