"""Storage: SQLCipher files are encrypted; PostgreSQL gets a schema per service."""

from __future__ import annotations

import sqlite3
import uuid

import pytest
from sqlalchemy import text

from nemo_server.common.db import StorageError, create_service_engine, open_service_database
from nemo_server.common.settings import CommonSettings

MIGRATIONS = "nemo_server.gateway:migrations"


def test_database_file_is_not_plain_sqlite(common_settings: CommonSettings) -> None:
    db = open_service_database("gateway", common_settings, MIGRATIONS)
    with db.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO settings (key, value) VALUES ('canary', 'secret-canary-value')")
        )
    db.dispose()
    path = common_settings.data_dir / "db" / "gateway.db"
    raw = path.read_bytes()
    assert not raw.startswith(b"SQLite format 3")
    assert b"secret-canary-value" not in raw
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        sqlite3.connect(path).execute("SELECT * FROM sqlite_master").fetchall()


def test_wrong_key_fails_with_a_clear_message(common_settings: CommonSettings) -> None:
    open_service_database("gateway", common_settings, MIGRATIONS).dispose()
    (common_settings.data_dir / "secrets" / "db_key").write_text("ab" * 32)
    with pytest.raises(StorageError, match="not readable with the configured database key"):
        create_service_engine("gateway", common_settings)


def test_reopening_keeps_data(common_settings: CommonSettings) -> None:
    db = open_service_database("gateway", common_settings, MIGRATIONS)
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO settings (key, value) VALUES ('k', 'v')"))
    db.dispose()
    again = open_service_database("gateway", common_settings, MIGRATIONS)
    with again.engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM settings WHERE key='k'")).scalar() == "v"
    again.dispose()


@pytest.mark.integration
def test_postgres_schema_per_service(postgres_url: str, data_dir, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    monkeypatch.setenv("NEMO_DATABASE_URL", postgres_url)
    monkeypatch.setenv("NEMO_DATABASE_SCHEMA_PREFIX", prefix)
    settings = CommonSettings()
    db = open_service_database("gateway", settings, MIGRATIONS)
    try:
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO settings (key, value) VALUES ('k', 'v')"))
            tables = (
                conn.execute(
                    text(
                        "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"
                    ),
                    {"s": f"{prefix}gateway"},
                )
                .scalars()
                .all()
            )
        assert {"users", "api_keys", "settings", "alembic_version"} <= set(tables)
    finally:
        with db.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{prefix}gateway" CASCADE'))
        db.dispose()
