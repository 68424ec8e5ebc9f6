"""Reports and dashboards: owned records, shared like any other (SPEC T6, M).

A report holds a definition (``report.definition`` checks it): what it counts, how it
filters and groups, and how it is drawn. It stores no numbers: each run counts, at that
moment, only what its viewer may read. A dashboard pins reports (saved ones, or the
built-in ones by key) on one page.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gatherly.access import registry
from gatherly.access.models import OwnedMixin, owned_indexes
from gatherly.core.db import AuditedMixin, Base


class Report(OwnedMixin, AuditedMixin, Base):
    """A saved report definition."""

    __tablename__ = "report"
    __table_args__ = (*owned_indexes("report"), Index("ix_report_name", "name"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # {"source", "filters", "group_by", "measures", "chart"} (report.definition.Definition)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Dashboard(OwnedMixin, AuditedMixin, Base):
    """A page of pinned reports: ``items`` are ``{"report": id}`` or ``{"builtin": key}``."""

    __tablename__ = "dashboard"
    __table_args__ = owned_indexes("dashboard")

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


registry.register("report", "Report", Report)
registry.register("dashboard", "Dashboard", Dashboard)
