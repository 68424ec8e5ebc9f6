"""The organisation: business units, users, teams, security roles, API tokens, feature
switches; the directory that loads a user's principal for the access engine."""
