"""Integrations with other frameworks, each an optional extra (`pip install 'pcache-magic[autogen]'`)."""
