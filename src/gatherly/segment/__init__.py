"""Segments, marketing lists and business-unit scoping (SPEC B4, B5, B13, T6)."""
