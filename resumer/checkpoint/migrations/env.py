"""Alembic environment for the checkpoint database.

The store passes its own open connection in ``config.attributes["connection"]``
(so migrations run inside resumer's IMMEDIATE transaction); a developer running
``alembic -x db=PATH ...`` gets a connection to that file instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    db = context.get_x_argument(as_dictionary=True).get("db", "resumer.db")
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        context.configure(connection=conn, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("resumer migrations run online only")
run_migrations_online()
