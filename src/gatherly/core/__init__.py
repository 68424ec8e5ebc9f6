"""What every domain builds on and nothing in it depends on a domain: settings, the database
and its types, the error tree, paging, bounds, the audit trail, the change outbox, the secret
key, the one CSV writer."""
