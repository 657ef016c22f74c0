"""Settings: embedded defaults, errors that name the variable, a kept secret key."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from server.config import ConfigError, load_settings, normalise_database_url


def test_embedded_defaults_put_everything_under_the_data_directory(tmp_path: Path) -> None:
    settings = load_settings({"YIZHAN_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'yizhan.db'}"
    assert settings.storage_url == (tmp_path / "objects").as_uri()
    assert settings.asr_model == "base" and settings.asr_language == "zh"
    assert settings.is_sqlite


def test_the_secret_key_is_generated_once_kept_private_and_reused(tmp_path: Path) -> None:
    first = load_settings({"YIZHAN_DATA_DIR": str(tmp_path)}).secret()
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_settings({"YIZHAN_DATA_DIR": str(tmp_path)}).secret() == first
    assert len(first) >= 32


def test_a_given_secret_key_is_used_and_never_shown(tmp_path: Path) -> None:
    key = "k" * 40
    settings = load_settings({"YIZHAN_DATA_DIR": str(tmp_path), "YIZHAN_SECRET_KEY": key})
    assert settings.secret() == key
    assert key not in repr(settings) and key not in str(settings.model_dump())
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("YIZHAN_PORT", "eighty"),
        ("YIZHAN_PORT", "70000"),
        ("YIZHAN_DATABASE_URL", "mysql://root@localhost/x"),
        ("YIZHAN_STORAGE_URL", "ftp://host/bucket"),
        ("YIZHAN_SECRET_KEY", "short"),
        ("YIZHAN_LOG_LEVEL", "LOUD"),
        ("YIZHAN_TIMEZONE", "Mars/Olympus"),
        ("YIZHAN_NOTIFY_CHANNEL", "pigeon"),
    ],
)
def test_an_invalid_setting_fails_with_a_message_naming_the_variable(
    tmp_path: Path, variable: str, value: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"YIZHAN_DATA_DIR": str(tmp_path), variable: value})
    message = str(caught.value)
    assert variable in message, message
    assert value not in message or variable != "YIZHAN_SECRET_KEY", "the secret was echoed"


def test_plain_database_urls_get_the_async_drivers() -> None:
    assert normalise_database_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_database_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_database_url("sqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"


def test_loading_settings_logs_nothing_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = load_settings({"YIZHAN_DATA_DIR": str(tmp_path)})
    assert settings.secret() not in caplog.text
