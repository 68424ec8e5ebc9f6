"""The job queue and the schedule (Huey: SQLite embedded, Redis when configured)."""
