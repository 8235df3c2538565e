"""Alembic environment for the ledger. Run through `engines.migrate_ledger`, which passes
an open connection in `config.attributes["connection"]`. `alembic` on the command line
migrates the ledger the dashboard would use: the URL in the environment variable
config.toml names (`databases.ledger_url_env`, DPO_LEDGER_URL by default), else the demo
ledger under `databases.demo_dir`, as read by `settings.load_settings` (the only reader of
the environment); `DPO_CONFIG` names another config.toml."""

from alembic import context

from data_access.engines import make_engine
from data_access.ledger_tables import ledger_metadata
from data_access.settings import config_path, load_settings

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
    engine = make_engine(load_settings(config_path()).urls["ledger"])
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()
