"""What the REST API shares across domains: request dependencies (session, principal),
bounded path and query ids, the JSON error handlers and streamed downloads. Routes live in each
domain's ``router.py``."""
