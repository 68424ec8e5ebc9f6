"""Contacts and leads: owned person records, their sharing and assignment, and tombstones
that keep a deleted person from coming back through a sync."""
