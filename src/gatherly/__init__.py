"""Gatherly: a self-hosted marketing platform with Teams webinar sync and BU security."""

__version__ = "0.1.0"
