"""Pure reasoning about a session's calls: the ledger and its predictions, miss diagnosis, what-if
replays through the emulator's engine, the breakpoint planner, volatile-value warnings, savings."""
