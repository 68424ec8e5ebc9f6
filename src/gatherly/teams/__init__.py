"""The Microsoft Teams webinar connector: connection, settings, organizers, sync."""
