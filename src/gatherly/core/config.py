"""Settings from the environment and `.env`, prefix ``GATHERLY_`` (nested with ``__``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _last_month() -> str:
    """Last month as LinkedIn names its API versions (``202611``)."""
    today = datetime.now(UTC)
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year}{month:02d}"


class Settings(BaseSettings):
    """Runtime configuration; built once by the entry point and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="GATHERLY_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    database_url: str = Field(
        default="sqlite:///var/gatherly.db",
        description="SQLAlchemy URL; SQLite file by default, postgresql+psycopg://… in production.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Encrypts stored credentials (the Teams client secret). Unset: a random "
        "key generated on first run into `secret_key_file`. Entry points resolve it once with "
        "`gatherly.core.crypto.resolve`.",
    )
    secret_key_file: Path = Field(
        default=Path("var/secret.key"),
        description="Where the generated secret key lives (mode 0600) when `secret_key` is unset.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="The lowest level of the lines logged (any case)."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="Log lines on stderr: `json` (one object a line, for collectors), "
        "`console` (readable), or `auto`: console on a terminal, JSON otherwise.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="The bearer token Prometheus presents to scrape /metrics "
        "(`Authorization: Bearer <token>`). Unset or empty: /metrics answers 404.",
    )
    metrics_dir: Path | None = Field(
        default=None,
        description="Where the server's and workers' processes on this machine keep their "
        "metrics files (Prometheus multi-process mode), so one scrape sums them all. Unset: "
        "`metrics` beside the queue file, used only when a command starts several processes.",
    )
    api_concurrency: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Requests each API process works on at once (the others wait their turn, "
        "holding nothing); its database pool keeps this many connections and a few more.",
    )
    principal_cache_size: int = Field(
        default=10_000,
        ge=0,
        le=1_000_000,
        description="Callers (API tokens, signed-in users) whose roles and teams each API "
        "process keeps between requests; dropped on the next request after any change to "
        "users, teams, roles or tokens. 0 turns the cache off.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="Where recipients reach this installation: the links in emails "
        "(unsubscribe, subscription centre, tracking) start with it.",
    )

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    redis_url: str | None = Field(default=None, description="Job queue on Redis when set.")
    queue_name: str = Field(
        default="gatherly",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="The queue's name: installations sharing one Redis need different names.",
    )
    queue_path: str = Field(
        default="var/queue.db", description="The job queue's SQLite file when Redis is not set."
    )
    teams_client_secret: SecretStr | None = Field(
        default=None,
        description="The Teams app's client secret, when it is not stored (encrypted) in the "
        "database by `gatherly teams connect`.",
    )
    graph_rate_per_second: float = Field(
        default=25.0, gt=0, description="Graph requests per second the connector stays under."
    )
    segment_relative_refresh_minutes: int = Field(
        default=60,
        ge=1,
        description="How often segments with relative dates ('in the last 90 days') are "
        "recomputed as time passes.",
    )
    scoring_window_refresh_minutes: int = Field(
        default=60,
        ge=1,
        description="How often lead-scoring models with windows ('in the last 30 days') are "
        "rescored in full, so points expire as time passes.",
    )
    graph_concurrency: int = Field(
        default=4, ge=1, le=32, description="Webinars fetched from Graph at the same time."
    )
    teams_watch_days_after_end: int = Field(
        default=7,
        ge=0,
        description="Days after a ticked webinar ends that Gatherly stays subscribed to its "
        "change notifications (attendance reports come after the end); later changes "
        "arrive with the scheduled sync.",
    )
    teams_probes_per_day: int = Field(
        default=1000,
        ge=1,
        description="Teams users Graph is asked about one at a time per day (their access "
        "policy), spread over the day's scheduled syncs; webinars themselves come from the "
        "tenant-wide list.",
    )

    smtp_url: SecretStr | None = Field(
        default=None,
        description="Where email is sent: smtp://user:pass@host:587 (STARTTLS, required), "
        "smtps://user:pass@host:465 (TLS from the start), or smtp://host:25?tls=none for a "
        "relay on a trusted network (the demo's mail catcher). Unset: nothing can be sent.",
    )
    smtp_ca_file: Path | None = Field(
        default=None,
        description="Certificates (PEM) to trust for the SMTP server, besides the system's.",
    )
    smtp_rate_per_second: float = Field(
        default=20.0, gt=0, description="Messages per second handed to the SMTP server at most."
    )
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    dkim_key_file: Path | None = Field(
        default=None,
        description="A PEM RSA private key: outgoing email is DKIM-signed with "
        "it when set, for the sender's domain unless `dkim_domain` says otherwise.",
    )
    dkim_selector: str = Field(default="gatherly", pattern=r"^[A-Za-z0-9._-]{1,63}$")
    dkim_domain: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]{1,253}$")
    email_retry_seconds: float = Field(
        default=300.0,
        gt=0,
        description="The wait before retrying a message the server deferred (4xx); doubled "
        "at each attempt.",
    )
    email_max_attempts: int = Field(
        default=5, ge=1, le=20, description="Attempts before a deferred message is a soft bounce."
    )
    mail_catcher_dir: Path | None = Field(
        default=None,
        description="Where the bundled mail catcher (make demo, gatherly mail-catcher) keeps "
        "what it catches; set, the Mail catcher page shows it to system administrators.",
    )
    email_webhook_token: SecretStr | None = Field(
        default=None,
        description="The shared secret a sending service (or your MTA) presents to post "
        "bounces and complaints to /api/v1/email/webhook. Unset: the webhook is closed.",
    )
    journey_batch: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Journey members advanced per transaction: a worker that dies loses at "
        "most one batch's work, which the next pass does again.",
    )
    email_lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="How long a send stays with the worker on it without word from it; after "
        "that (the worker died) another worker resumes it.",
    )
    linkedin_client_id: str | None = Field(
        default=None,
        max_length=200,
        description="The LinkedIn app's client id (Lead Sync API product). Unset: LinkedIn "
        "cannot be connected.",
    )
    linkedin_client_secret: SecretStr | None = Field(
        default=None, description="The LinkedIn app's client secret."
    )
    linkedin_auth_url: str = Field(
        default="https://www.linkedin.com",
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="Where members sign in to connect LinkedIn (OAuth 2.0); the bundled "
        "emulator's address in the demo and the tests.",
    )
    linkedin_api_url: str = Field(
        default="https://api.linkedin.com",
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="LinkedIn's API (the bundled emulator's address in the demo and tests).",
    )
    linkedin_version: str = Field(
        default_factory=lambda: _last_month(),
        pattern=r"^20[0-9]{2}(0[1-9]|1[0-2])$",
        description="The LinkedIn-Version header (YYYYMM). Default: last month's, so it never "
        "falls behind LinkedIn's one-year window; set it to pin a version you have tested.",
    )
    linkedin_poll_minutes: int = Field(
        default=5, ge=1, le=1440, description="How often connected LinkedIn profiles are polled."
    )

    # Set by ``crypto.resolve``: the key above was checked (and warned about) once.
    _secret_key_resolved: bool = PrivateAttr(default=False)
