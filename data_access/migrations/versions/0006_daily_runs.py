"""daily runs

Revision ID: 0006_daily_runs
Revises: 0005_breaches
Create Date: 2026-12-04

The nightly run (`python -m data_access.daily`): a ledger row per run and per step
(started, finished, outcome, counts, error), the one-row lock two runs at once compete
for, and the radar items it reported (first reported, acknowledged, escalated). Checks
first, like 0001-0004, so a run interrupted on MariaDB finishes when run again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_daily_runs"
down_revision = "0005_breaches"
branch_labels = None
depends_on = None

EMAIL = 320
TABLES = ("daily_runs", "daily_run_steps", "daily_run_lock", "radar_items")


def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def upgrade() -> None:
    existing = _tables()
    if "daily_runs" not in existing:
        op.create_table(
            "daily_runs",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("as_of", sa.Date(), nullable=False),
            sa.Column("actor", sa.String(length=EMAIL), nullable=False),
            sa.Column("started_at", sa.DateTime(), nullable=False),
            sa.Column("finished_at", sa.DateTime()),
            sa.Column("outcome", sa.String(length=12), nullable=False),
            sa.Column("counts", sa.Text()),
            sa.Column("error", sa.Text()),
        )
        op.create_index("ix_daily_runs_started_at", "daily_runs", ["started_at"])
    if "daily_run_steps" not in existing:
        op.create_table(
            "daily_run_steps",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("run_id", sa.Integer(), sa.ForeignKey("daily_runs.id"), nullable=False),
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("step", sa.String(length=60), nullable=False),
            sa.Column("started_at", sa.DateTime(), nullable=False),
            sa.Column("finished_at", sa.DateTime()),
            sa.Column("outcome", sa.String(length=12), nullable=False),
            sa.Column("counts", sa.Text()),
            sa.Column("error", sa.Text()),
            sa.UniqueConstraint("run_id", "seq", name="uq_daily_run_steps_run_seq"),
        )
    if "daily_run_lock" not in existing:
        op.create_table(
            "daily_run_lock",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("run_id", sa.Integer()),
            sa.Column("holder", sa.String(length=100)),
            sa.Column("expires_at", sa.DateTime()),
        )
    lock = sa.table("daily_run_lock", sa.column("id", sa.Integer()))
    if op.get_bind().execute(sa.select(sa.func.count()).select_from(lock)).scalar_one() == 0:
        op.bulk_insert(lock, [{"id": 1}])
    if "radar_items" not in existing:
        op.create_table(
            "radar_items",
            sa.Column("key", sa.String(length=200), primary_key=True),
            sa.Column("kind", sa.String(length=40), nullable=False),
            sa.Column("first_reported_at", sa.DateTime(), nullable=False),
            sa.Column("first_red_at", sa.DateTime()),
            sa.Column("last_reported_at", sa.DateTime(), nullable=False),
            sa.Column("severity", sa.String(length=8), nullable=False),
            sa.Column("acknowledged_at", sa.DateTime()),
            sa.Column("acknowledged_by", sa.String(length=EMAIL)),
            sa.Column("escalated_at", sa.DateTime()),
        )


def downgrade() -> None:
    existing = _tables()
    for name in reversed(TABLES):
        if name in existing:
            op.drop_table(name)
