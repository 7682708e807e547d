"""`pcache_magic.autogen`: the public name of `pcache_magic.integrations.autogen`.

Use it as AutoGen's client, only the import changed:
`from pcache_magic.autogen import CachingAnthropicChatCompletionClient as AnthropicChatCompletionClient`.
"""

from ..integrations.autogen import *  # noqa: F403 (the same names, under their public path)
from ..integrations.autogen import __all__ as __all__
