"""Email marketing: messages, content settings, sending, tracking (SPEC M, B11, B14)."""
