"""Pure building blocks, no I/O: the model catalogue, token estimates, the conversation and the
request it renders, where the cache's breakpoints fall and its rules, pre-flight checks, usage and
money, and the one formatter.  Everything above builds on these."""
