"""The web UI: server-rendered pages on the same services and access engine as the API."""
