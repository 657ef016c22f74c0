"""The one typed settings object, read from ``YIZHAN_*`` environment variables.

Every setting has an embedded default so that ``yizhan serve`` works with no
configuration: a SQLite file and a local object-store folder under the data
directory, the bundled speech model.  A missing or invalid value fails at start
with a message that names the variable.
"""

from __future__ import annotations

import os
import secrets
import stat
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "YIZHAN_"
SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name)
MIN_SECRET_KEY_LENGTH = 32


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the variable."""


class NotifyChannelKind(StrEnum):
    OUTBOX = "outbox"


class LogFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    data_dir: Path = Path("var")
    database_url: str = ""
    storage_url: str = ""
    secret_key: SecretStr = SecretStr("")
    asr_model: str = "base"
    asr_language: str = "zh"
    asr_device: str = "auto"
    asr_cpu_threads: int = Field(default=2, ge=1, le=64)
    # live captions and the transcript of rooms (the model loads when the first speech arrives)
    captions: bool = True
    asr_workers: int = Field(default=1, ge=1, le=16)
    asr_max_streams: int = Field(default=4, ge=1, le=256)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str = ""
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cookie_secure: bool = False
    # reverse proxies whose X-Forwarded-For names the real client (for throttling and audit)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_url: str = ""

    notify_channel: NotifyChannelKind = NotifyChannelKind.OUTBOX
    # demo mode: the outbox page is open to anyone, so that a demo party can read its code
    demo: bool = False

    # object lock for write-once kinds on S3: 0 days turns it off
    storage_lock_mode: str = Field(default="governance", pattern="^(governance|compliance)$")
    storage_retention_days: int = Field(default=0, ge=0, le=36500)
    evidence_max_mb: int = Field(default=100, ge=1, le=4096)
    upload_retry_max_seconds: float = Field(default=60.0, ge=0.1, le=3600)
    # recorded statements of asynchronous hearings (audio or video)
    statement_max_mb: int = Field(default=500, ge=1, le=8192)

    # background jobs (transcribing uploaded recordings, exports): workers per process
    # (speech decoding is heavy: one on a small machine), attempts before a job fails,
    # and how long a running job may go without a heartbeat before it is resumed elsewhere
    job_workers: int = Field(default=1, ge=1, le=16)
    job_max_attempts: int = Field(default=3, ge=1, le=20)
    job_heartbeat_seconds: float = Field(default=5.0, ge=0.1, le=300)
    job_stale_seconds: float = Field(default=60.0, ge=1, le=86400)

    # recording of rooms (庭审录音录像): each track is cut into WebM segments of about this
    # length (a crash loses at most the open one); the recorder's heartbeat, after three of
    # which without news a recording is marked interrupted; the composite's container
    recording_segment_seconds: float = Field(default=20.0, ge=2, le=300)
    recording_heartbeat_seconds: float = Field(default=5.0, ge=0.2, le=300)
    recording_format: str = Field(default="mp4", pattern="^(mp4|webm)$")
    # how long recordings are kept after they end, per dispute type ("default" for the
    # rest), e.g. "default=3650,loan=1825"; 0 keeps them for ever. A legal hold wins.
    recording_retention_days: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=lambda: {"default": 3650}
    )
    # how often the purge job looks for expired recordings
    recording_purge_hours: float = Field(default=24.0, ge=0.01, le=24 * 30)

    # electronic service (电子送达): email through this SMTP server (an empty host turns the
    # email channel off; the platform inbox always serves), SMS through a gateway ("outbox":
    # the embedded default, messages go to the outbox page); tries per channel before it
    # gives up, and the first wait between tries (doubling each time)
    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "yizhan@localhost"
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(default=15.0, ge=1, le=300)
    sms_gateway: str = Field(default="outbox", pattern="^(outbox)$")
    service_max_attempts: int = Field(default=5, ge=1, le=50)
    service_retry_seconds: float = Field(default=60.0, ge=0.05, le=86400)
    # PAdES signatures (agreements, rulings, certificates): the platform's key and
    # certificate chain as PEM files; when empty, a key and a self-signed certificate are
    # made once under the data directory. The mediation organisation's e-seal image (PNG).
    signing_key_file: str = ""
    signing_cert_file: str = ""
    signing_seal_image: str = ""

    session_hours: int = Field(default=12, ge=1, le=24 * 30)
    login_max_failures: int = Field(default=5, ge=1)
    login_lock_minutes: int = Field(default=15, ge=1)
    login_slowdown_seconds: float = Field(default=0.5, ge=0, le=5)
    code_minutes: int = Field(default=10, ge=1, le=60)
    reverify_minutes: int = Field(default=10, ge=1, le=120)
    invitation_days: int = Field(default=14, ge=1, le=365)
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)

    # rooms: ICE servers handed to browsers (STUN URLs; a TURN URL with a coturn
    # "use-auth-secret" shared secret, from which short-lived credentials are made)
    stun_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    turn_url: Annotated[list[str], NoDecode] = Field(default_factory=list)
    turn_secret: SecretStr = SecretStr("")
    turn_ttl_seconds: int = Field(default=6 * 3600, ge=60, le=7 * 24 * 3600)
    # how long a dropped participant is shown as "reconnecting" before "left"
    room_drop_grace_seconds: float = Field(default=30.0, ge=1, le=600)
    # socket.io messages: at most this many per second (burst twice that), then refused;
    # a socket that keeps flooding is disconnected
    socket_rate: float = Field(default=20.0, ge=1, le=1000)
    socket_max_bytes: int = Field(default=64 * 1024, ge=4096, le=16 * 1024 * 1024)

    # the court's calendar: public holidays off, make-up working days (调休) on
    holidays: Annotated[list[date], NoDecode] = Field(default_factory=list)
    extra_working_days: Annotated[list[date], NoDecode] = Field(default_factory=list)

    timezone: str = "Asia/Shanghai"  # for display; everything is stored in UTC

    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.JSON

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("holidays", "extra_working_days", mode="before")
    @classmethod
    def _split_dates(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("trusted_proxies", "stun_urls", "turn_url", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("recording_retention_days", mode="before")
    @classmethod
    def _retention_table(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        table: dict[str, int] = {}
        for item in value.split(","):
            if not item.strip():
                continue
            name, sep, days = item.partition("=")
            if not sep:
                name, days = "default", name
            if not days.strip().isdigit():
                raise ValueError(f"{item.strip()!r}: days must be a whole number")
            table[name.strip() or "default"] = int(days)
        table.setdefault("default", 3650)
        return table

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip().rstrip("/") for item in value.split(",") if item.strip()]
        return value

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() and len(value.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_KEY_LENGTH} characters")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalise_database_url(value) if value else value

    @field_validator("storage_url")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        if value and not value.startswith(("file://", "s3://")):
            raise ValueError("must start with file:// or s3://")
        return value

    @model_validator(mode="after")
    def _embedded_defaults(self) -> Settings:
        # frozen model: fill the derived defaults through object.__setattr__
        if not self.database_url:
            object.__setattr__(
                self, "database_url", f"sqlite+aiosqlite:///{self.data_dir / 'yizhan.db'}"
            )
        if not self.storage_url:
            object.__setattr__(self, "storage_url", (self.data_dir / "objects").as_uri())
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    def secret(self) -> str:
        value = self.secret_key.get_secret_value()
        if not value:
            raise ConfigError("YIZHAN_SECRET_KEY: not loaded; call load_settings()")
        return value


def normalise_database_url(url: str) -> str:
    """Map plain URLs onto the async drivers we ship (aiosqlite, asyncpg)."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        return url
    raise ValueError("must be a sqlite:/// or postgresql:// URL")


def _env_name(loc: tuple[int | str, ...]) -> str:
    field = str(loc[0]) if loc else ""
    return ENV_PREFIX + field.upper() if field else ENV_PREFIX + "*"


def load_settings(env: dict[str, str] | None = None, *, create_dirs: bool = True) -> Settings:
    """Read the settings; generate and keep the secret key when none is given.

    Raises ``ConfigError`` whose message names the offending variable.
    """
    source = dict(os.environ if env is None else env)
    values = {
        k[len(ENV_PREFIX) :].lower(): v for k, v in source.items() if k.startswith(ENV_PREFIX)
    }
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_env_name(err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise ConfigError(f"Invalid configuration: {problems}") from None
    if create_dirs:
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"YIZHAN_DATA_DIR: cannot create {settings.data_dir}: {exc}"
            ) from None
    if not settings.secret_key.get_secret_value():
        key = _stored_secret_key(settings.data_dir)
        object.__setattr__(settings, "secret_key", SecretStr(key))
    return settings


def _stored_secret_key(data_dir: Path) -> str:
    path = data_dir / SECRET_KEY_FILE
    if path.exists():
        key = path.read_text(encoding="ascii").strip()
        if len(key) < MIN_SECRET_KEY_LENGTH:
            raise ConfigError(
                f"YIZHAN_SECRET_KEY: the stored key in {path} is too short; remove it or set the variable"
            )
        return key
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key
