"""One settings object, read once from ``CONVEYOR_*`` environment variables at each entry point.

Nothing else in the code base reads ``os.environ``: entry points build :class:`Settings` (usually
through :func:`load_settings`, which also resolves secrets) and pass it down.

A secret-bearing setting may hold a reference instead of the value:

* ``arn:aws:secretsmanager:…`` → resolved with Secrets Manager ``GetSecretValue``; a JSON secret
  may select a key with ``…#key`` (e.g. ``arn:…:secret:db#url``);
* ``ssm:/path/to/param`` or ``arn:aws:ssm:…:parameter/…`` → SSM Parameter Store (SecureString,
  decrypted).

They are resolved once, at start-up, by :func:`load_settings`.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.errors import ConfigurationError

DEFAULT_HOME = Path(".conveyor")


class LogFormat(StrEnum):
    CONSOLE = "console"
    JSON = "json"


class Settings(BaseSettings):
    """Everything Conveyor can be configured with. See the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="CONVEYOR_",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    home: Path = Field(
        default=DEFAULT_HOME, description="Directory for local state (SQLite file, dev logs)."
    )
    database_url: SecretStr | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL (postgresql+psycopg://…, sqlite:///…), or a Secrets Manager ARN / "
            "ssm: name holding it. Default: a SQLite file under CONVEYOR_HOME."
        ),
    )
    database_pool_size: int = Field(default=5, ge=1, le=100)
    queue_url: str | None = Field(default=None, description="SQS queue URL for executions.")
    dlq_url: str | None = Field(default=None, description="SQS dead-letter queue URL.")
    queue_name: str = Field(default="conveyor-executions")
    region: str = Field(default="us-east-1", description="AWS region for SQS, Lambda, ECS.")
    log_level: str = Field(default="INFO")
    log_format: LogFormat = Field(default=LogFormat.CONSOLE)
    environment: str = Field(default="local", description="Free-form label bound to every log.")

    # Execution behaviour
    lease_seconds: int = Field(default=60, ge=5, le=3600, description="Worker lease length.")
    heartbeat_seconds: int = Field(default=15, ge=1, le=600)
    visibility_timeout_seconds: int = Field(default=3900, ge=30, le=43200)
    worker_concurrency: int = Field(default=4, ge=1, le=256)
    worker_polling_interval: float = Field(default=0.05, gt=0, le=20)
    worker_alive_file: Path = Field(
        default=Path("/tmp/conveyor-worker.alive"),  # noqa: S108  (the container's writable /tmp)
        description="File the worker touches every heartbeat_seconds; `worker --check` reads it.",
    )
    max_delay_seconds: int = Field(
        default=900, ge=0, le=900, description="Longest SQS DelaySeconds (AWS maximum 900)."
    )
    recovery_attempts: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Extra claims allowed beyond max_attempts for runs whose worker died.",
    )
    function_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated modules the worker imports to register python functions.",
    )

    # Scheduler
    tick_batch_size: int = Field(default=2500, ge=1, le=10000)
    tick_parallelism: int = Field(
        default=2, ge=1, le=8, description="Sessions claiming tick batches side by side."
    )
    enqueue_parallelism: int = Field(default=4, ge=1, le=64)
    outbox_grace_seconds: int = Field(
        default=30, ge=0, le=3600, description="Age before the sweeper resends a pending run."
    )
    publish_backlog_metric: bool = Field(default=True)

    # Actions / providers
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    default_model: str = "claude-sonnet-4-5"
    lambda_endpoint_url: str | None = None
    webhook_secrets: SecretStr | None = Field(
        default=None, description='JSON object {"source": "secret"} (or an ARN holding it).'
    )

    # API
    api_url: str | None = None
    api_key: SecretStr | None = Field(
        default=None, description="API key the CLI sends to CONVEYOR_API_URL (or an ARN)."
    )
    cors_origins: list[str] = Field(default_factory=list)
    jwt_secret: SecretStr | None = None
    api_key_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="How long the API trusts a verified key before looking it up again (0: never).",
    )

    # Ops
    ecs_cluster: str | None = None
    ecs_service: str | None = None

    @field_validator("function_modules", mode="before")
    @classmethod
    def _split_modules(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @property
    def resolved_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.home / 'conveyor.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


SECRET_FIELDS = (
    "database_url",
    "anthropic_api_key",
    "webhook_secrets",
    "jwt_secret",
    "api_key",
)


def is_secret_reference(value: str) -> bool:
    return value.startswith(("arn:aws:secretsmanager:", "arn:aws:ssm:", "ssm:"))


def resolve_secret(reference: str, *, region: str, session: Any = None) -> str:
    """Fetch the value a secret reference names (Secrets Manager ARN or SSM parameter)."""
    import boto3  # noqa: PLC0415  (only entry points with references pay for boto3)

    boto = session or boto3.session.Session(region_name=region)
    try:
        if reference.startswith("arn:aws:secretsmanager:"):
            arn, _, key = reference.partition("#")
            client = boto.client("secretsmanager", region_name=region)
            raw = client.get_secret_value(SecretId=arn)["SecretString"]
            if not key:
                return str(raw)
            document = json.loads(raw)
            if key not in document:
                raise ConfigurationError(f"secret {arn} has no key {key!r}")
            return str(document[key])
        name = reference.removeprefix("ssm:")
        if name.startswith("arn:aws:ssm:"):
            name = "/" + name.split(":parameter/", 1)[1]
        client = boto.client("ssm", region_name=region)
        return str(client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])
    except ConfigurationError:
        raise
    except Exception as exc:  # botocore errors, JSON errors: all mean "cannot configure"
        raise ConfigurationError(f"cannot resolve secret {reference}: {exc}") from exc


def read_settings(**overrides: Any) -> Settings:
    """The settings from the environment (plus overrides), secret references left unresolved."""
    try:
        return Settings(**overrides)
    except ValueError as exc:
        raise ConfigurationError(f"invalid configuration: {exc}") from exc


def load_settings(*, session: Any = None, **overrides: Any) -> Settings:
    """Build the settings from the environment (plus overrides) and resolve secret references."""
    return resolve_secrets(read_settings(**overrides), session=session)


def resolve_secrets(settings: Settings, *, session: Any = None) -> Settings:
    """Replace every secret reference (Secrets Manager ARN, SSM name) with its value."""
    resolved: dict[str, Any] = {}
    for name in SECRET_FIELDS:
        value = getattr(settings, name)
        if value is not None and is_secret_reference(value.get_secret_value()):
            resolved[name] = SecretStr(
                resolve_secret(value.get_secret_value(), region=settings.region, session=session)
            )
    return settings.model_copy(update=resolved) if resolved else settings
