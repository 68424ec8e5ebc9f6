"""Lead scoring (SPEC B9)."""
