"""Marketing events, registrations, attendance and the contact timeline."""
