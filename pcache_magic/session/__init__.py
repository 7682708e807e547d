"""The `Session` and its parts: the call pipeline, the transport (live API or emulator),
save/load/export, and the AutoGen guide's caching API.  No IPython."""
