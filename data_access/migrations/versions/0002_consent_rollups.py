"""consent roll-ups

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

The ledger's consent summaries (RULES.md R20, R21; DESIGN.md "Consent watermark"): the
watermark row, the ids still awaited below it, each subject's applied events under a keyed
hash, the per-day changes of subjects/granted/withdrawn, and event counts per day, action,
source and notice version. Like 0001, every step checks first, so an interrupted run on
MariaDB (DDL is not transactional there) finishes when run again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _missing_table(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def _create_index(table: str, name: str, columns: list[str]) -> None:
    existing = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(table)}
    if name not in existing:
        op.create_index(name, table, columns)


def _seed_state() -> None:
    """The state row exists from the start, so a refresh can lock it (status 'empty')."""
    state = sa.table(
        "consent_rollup_state",
        sa.column("id"),
        sa.column("status"),
        sa.column("watermark"),
        sa.column("events_applied"),
    )
    bind = op.get_bind()
    if bind.execute(sa.select(state.c.id).where(state.c.id == 1)).first() is None:
        op.bulk_insert(state, [{"id": 1, "status": "empty", "watermark": 0, "events_applied": 0}])


def upgrade() -> None:
    if _missing_table("consent_rollup_state"):
        op.create_table(
            "consent_rollup_state",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("status", sa.String(length=12), nullable=False),
            sa.Column("watermark", sa.BigInteger(), nullable=False),
            sa.Column("key_check", sa.CHAR(length=16), nullable=True),
            sa.Column("build_token", sa.String(length=40), nullable=True),
            sa.Column("build_started_at", sa.DateTime(), nullable=True),
            sa.Column("built_at", sa.DateTime(), nullable=True),
            sa.Column("refreshed_at", sa.DateTime(), nullable=True),
            sa.Column("events_applied", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    _seed_state()
    if _missing_table("consent_rollup_gaps"):
        op.create_table(
            "consent_rollup_gaps",
            sa.Column("event_id", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.PrimaryKeyConstraint("event_id"),
        )
    if _missing_table("consent_rollup_subjects"):
        op.create_table(
            "consent_rollup_subjects",
            sa.Column("subject_ref", sa.CHAR(length=32), nullable=False),
            sa.Column("purpose", sa.String(length=40), nullable=False),
            sa.Column("history", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("subject_ref", "purpose"),
            sqlite_with_rowid=False,  # one B-tree: a refresh looks up thousands of subjects
        )
    if _missing_table("consent_rollup_days"):
        op.create_table(
            "consent_rollup_days",
            sa.Column("purpose", sa.String(length=40), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("subjects", sa.Integer(), nullable=False),
            sa.Column("granted", sa.Integer(), nullable=False),
            sa.Column("withdrawn", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("purpose", "day"),
        )
    if _missing_table("consent_rollup_events"):
        op.create_table(
            "consent_rollup_events",
            sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("purpose", sa.String(length=40), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("action", sa.String(length=12), nullable=False),
            sa.Column("source", sa.String(length=40), nullable=True),
            sa.Column("notice_version", sa.String(length=40), nullable=True),
            sa.Column("events", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    _create_index("consent_rollup_events", "ix_consent_rollup_events_day", ["day", "purpose"])


def downgrade() -> None:
    op.drop_index("ix_consent_rollup_events_day", table_name="consent_rollup_events")
    op.drop_table("consent_rollup_events")
    op.drop_table("consent_rollup_days")
    op.drop_table("consent_rollup_subjects")
    op.drop_table("consent_rollup_gaps")
    op.drop_table("consent_rollup_state")
