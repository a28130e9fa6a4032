"""Databases: SQLCipher-encrypted SQLite by default, PostgreSQL when configured.

Each service owns one database file (`<data dir>/db/<service>.db`, keyed from the `db_key`
secret) or, on PostgreSQL, one schema (`nemo_<service>`). Alembic migrations in the service's
`migrations/` folder are applied on start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import QueuePool

from nemo_server.common.settings import CommonSettings

log = logging.getLogger("nemo.db")


class Base(DeclarativeBase):
    """Declarative base; each service defines its tables on its own subclass."""


class StorageError(RuntimeError):
    """The database cannot be opened (wrong key, unreachable server...)."""


def _sqlcipher_creator(path: Path, key_hex: str) -> Any:
    import sqlcipher3.dbapi2 as sqlcipher

    def connect() -> Any:
        conn = sqlcipher.connect(str(path), check_same_thread=False, timeout=30)
        # A raw 256-bit key skips SQLCipher's per-connection PBKDF2 (the key is random already).
        conn.execute(f"PRAGMA key = \"x'{key_hex}'\"")
        conn.execute("PRAGMA cipher_log_level = NONE")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlcipher.DatabaseError as exc:
            conn.close()
            raise StorageError(
                f"cannot open {path}: it is not readable with the configured database key "
                f"(wrong or missing secret 'db_key'?): {exc}"
            ) from None
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn

    return connect


def _db_key_hex(settings: CommonSettings) -> str:
    raw = settings.secrets().get("db_key")
    try:
        bytes.fromhex(raw)
    except ValueError:
        raise StorageError("secret 'db_key' must be hex (64 characters for 256 bits)") from None
    if len(raw) != 64:
        raise StorageError("secret 'db_key' must be 64 hex characters (256 bits)")
    return raw


def create_service_engine(service: str, settings: CommonSettings) -> Engine:
    """The engine for one service's database."""
    if settings.database_url:
        return _postgres_engine(settings.database_schema_prefix + service, settings.database_url)
    path = settings.data_dir / "db" / f"{service}.db"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    import sqlcipher3.dbapi2 as sqlcipher

    engine = create_engine(
        "sqlite://",
        module=sqlcipher,
        creator=_sqlcipher_creator(path, _db_key_hex(settings)),
        poolclass=QueuePool,
        pool_size=8,
        max_overflow=8,
    )
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DatabaseError as exc:
        raise StorageError(str(exc.orig)) from None
    return engine


def _postgres_engine(schema: str, url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)

    @event.listens_for(engine, "connect")
    def _search_path(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute(f'SET search_path TO "{schema}"')
        dbapi_conn.commit()

    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    return engine


class Database:
    """An engine plus a session factory; `with db.session() as s:` commits or rolls back."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    async def ping(self) -> None:
        """Readiness check: the database answers."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def migrate(engine: Engine, script_location: str) -> None:
    """Apply a service's Alembic migrations up to head.

    `script_location` is `package:folder`, e.g. `nemo_server.gateway:migrations`.
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", script_location)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def open_service_database(service: str, settings: CommonSettings, script_location: str) -> Database:
    """Open (creating if needed) and migrate one service's database."""
    engine = create_service_engine(service, settings)
    migrate(engine, script_location)
    return Database(engine)
