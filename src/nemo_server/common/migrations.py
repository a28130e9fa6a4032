"""The body of every service's Alembic `env.py`: run migrations on the connection we pass in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData


def run_env(target_metadata: MetaData) -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("migrations run through nemo_server.common.db.migrate()")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
