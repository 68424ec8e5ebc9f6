"""LinkedIn Lead Gen intake: connected member profiles, polled for lead form responses that
become leads and contacts owned by the profile's owner (SPEC B12)."""
