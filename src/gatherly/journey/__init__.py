"""Customer journeys: multi-step automation over segments and lists (SPEC B6, B7, M)."""
