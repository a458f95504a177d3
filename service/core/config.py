"""Settings: the only reader of the process environment (prefix ``IMI_``, DESIGN §7)."""

from __future__ import annotations

import weakref
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import Engine
from sqlmodel import Session

#: Address classes a webhook URL may resolve to (DESIGN §5).
TARGET_CLASSES = frozenset({"public", "private", "loopback"})


class Settings(BaseSettings):
    """Service configuration; every field has a working development default.

    Durations are seconds unless the name says days. Rate limits use the
    ``limits`` notation (``600/minute``).
    """

    model_config = SettingsConfigDict(env_prefix="IMI_", extra="ignore")

    database_url: str = "sqlite:///./var/imi.db"
    keys_dir: Path = Path("./var/keys")
    load_sample: bool = False
    public_base_url: str = "http://127.0.0.1:8000"

    webhook_targets: str = "public"
    webhook_retry_schedule: str = "0,5,300,1800,7200,18000,36000,36000"
    webhook_timeout_s: float = 15.0
    webhook_lease_s: float = 60.0
    webhook_disable_after_s: float = 432000.0
    webhook_secret_overlap_s: float = 86400.0

    reaffirmation_grace_days: int = 180
    #: Credentials live long: their status list says when they stop being true (issue 12).
    credential_ttl_s: int = 2592000
    token_ttl_s: int = 3600

    rate_limit_reads: str = "600/minute"
    rate_limit_strict: str = "120/minute"
    rate_limit_storage: str = "memory://"
    trusted_proxies: str = ""
    events_retention_days: int = 400
    #: Bounds of the in-memory cache of public representations (``service/web/cache.py``), per process.
    cache_max_entries: int = Field(default=50_000, ge=1)
    cache_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)

    #: The transparency log's origin (checkpoint first line and key name); empty: derived from
    #: the public base URL (``service/transparency/signer.py``).
    log_origin: str = ""

    #: argon2 parameter profile for client secrets (argon2.profiles); tests use CHEAPEST.
    secret_hash_profile: str = "RFC_9106_LOW_MEMORY"

    # Process wiring set by `imi-api serve` flags (not part of the public table).
    in_process_worker: bool = Field(default=True, description="run the delivery worker in-process")
    log_level: str = "INFO"
    #: Benchmarks only (bench/transparency.py measures what the log costs): no leaves are
    #: appended. A log switched off falls behind the event sequence; it catches up with the
    #: next event appended while it is on.
    transparency_log: bool = True

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("webhook_targets")
    @classmethod
    def _check_targets(cls, value: str) -> str:
        classes = {part.strip() for part in value.split(",") if part.strip()}
        unknown = classes - TARGET_CLASSES
        if unknown or not classes:
            raise ValueError(f"IMI_WEBHOOK_TARGETS: unknown classes {sorted(unknown)}")
        return ",".join(sorted(classes))

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",")]
        if not parts or any(not p for p in parts):
            raise ValueError("IMI_WEBHOOK_RETRY_SCHEDULE: comma-separated seconds, e.g. 0,5,300")
        for p in parts:
            if float(p) < 0:
                raise ValueError("IMI_WEBHOOK_RETRY_SCHEDULE: delays must be >= 0")
        return ",".join(parts)

    @property
    def allowed_target_classes(self) -> frozenset[str]:
        """The address classes webhooks may reach, e.g. ``{"loopback"}``."""
        return frozenset(self.webhook_targets.split(","))

    @property
    def retry_schedule(self) -> list[float]:
        """Delay in seconds before each attempt; ``len()`` is the number of attempts."""
        return [float(p) for p in self.webhook_retry_schedule.split(",")]

    @property
    def trusted_proxy_list(self) -> list[str]:
        """Addresses or CIDR networks whose ``X-Forwarded-For`` is believed."""
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()


_settings_by_engine: weakref.WeakKeyDictionary[Engine, Settings] = weakref.WeakKeyDictionary()


def bind_settings(engine: Engine, settings: Settings) -> None:
    """Remember that ``engine`` belongs to an app built with ``settings``.

    Listeners and periodic jobs only receive a session; they find the app's
    settings (the base URL of links, the grace period) through its engine.
    """
    _settings_by_engine[engine] = settings


def settings_for(session: Session) -> Settings:
    """The settings of the app whose engine ``session`` is bound to; engines nobody bound
    (a standalone worker) use :func:`get_settings`."""
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, sa.Connection) else bind
    found = _settings_by_engine.get(engine)
    if found is None:
        # A read-only session binds to an execution_options() copy of the engine.
        for known, settings in list(_settings_by_engine.items()):
            if known.url == engine.url:
                return settings
        return get_settings()
    return found
