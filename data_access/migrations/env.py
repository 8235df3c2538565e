"""Alembic environment for the ledger. Run through `engines.migrate_ledger`, which passes
an open connection in `config.attributes["connection"]`; `alembic` on the command line
uses DPO_LEDGER_URL (see alembic.ini)."""

from alembic import context
from sqlalchemy import create_engine

from data_access.ledger_tables import ledger_metadata

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=ledger_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    with create_engine(config.get_main_option("sqlalchemy.url")).connect() as conn:
        _run(conn)
