"""Settings: one object from CONVEYOR_* variables; secrets resolved once from AWS."""

from __future__ import annotations

import json

import boto3
import pytest

from shared.errors import ConfigurationError
from shared.settings import LogFormat, Settings, load_settings


def test_settings_read_the_conveyor_prefix_and_default_to_a_local_sqlite_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path))
    monkeypatch.setenv("CONVEYOR_LOG_FORMAT", "json")
    monkeypatch.setenv("CONVEYOR_QUEUE_URL", "http://127.0.0.1:1/123/q")
    monkeypatch.delenv("CONVEYOR_DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings.log_format is LogFormat.JSON
    assert settings.queue_url == "http://127.0.0.1:1/123/q"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.as_posix()}/conveyor.db"
    assert settings.is_sqlite


def test_a_bad_setting_is_a_configuration_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVEYOR_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigurationError, match="log_level"):
        load_settings()


def test_a_secrets_manager_arn_is_resolved_once_at_start_up(sqs_endpoint, monkeypatch) -> None:
    client = boto3.client("secretsmanager", endpoint_url=sqs_endpoint.url, region_name="us-east-1")
    arn = client.create_secret(
        Name="conveyor/db-test", SecretString=json.dumps({"url": "postgresql://u:p@db/x"})
    )["ARN"]
    plain_arn = client.create_secret(Name="conveyor/key-test", SecretString="sk-123")["ARN"]
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", sqs_endpoint.url)
    settings = load_settings(database_url=f"{arn}#url", anthropic_api_key=plain_arn)
    assert settings.resolved_database_url == "postgresql://u:p@db/x"
    assert settings.anthropic_api_key is not None
    assert settings.anthropic_api_key.get_secret_value() == "sk-123"


def test_an_ssm_securestring_parameter_is_resolved(sqs_endpoint, monkeypatch) -> None:
    client = boto3.client("ssm", endpoint_url=sqs_endpoint.url, region_name="us-east-1")
    client.put_parameter(Name="/conveyor/jwt", Value="x" * 64, Type="SecureString")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", sqs_endpoint.url)
    settings = load_settings(jwt_secret="ssm:/conveyor/jwt")
    assert settings.jwt_secret is not None
    assert settings.jwt_secret.get_secret_value() == "x" * 64


def test_an_unresolvable_secret_is_a_configuration_error(sqs_endpoint, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", sqs_endpoint.url)
    with pytest.raises(ConfigurationError, match="cannot resolve secret"):
        load_settings(
            database_url="arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf"
        )


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.region = "eu-west-1"  # type: ignore[misc]
