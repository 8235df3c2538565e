"""kept invoices

Revision ID: 0007_kept_invoices
Revises: 0006_daily_runs
Create Date: 2026-12-04

Invoices detached from a deleted or erased account and kept for bookkeeping (RULES.md R14,
R15) are linked to the person by keyed hash, so an access request after the deletion still
finds them (R9). Checks first, like 0001-0004, so a run interrupted on MariaDB finishes when
run again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_kept_invoices"
down_revision = "0006_daily_runs"
branch_labels = None
depends_on = None

TABLE = "kept_invoices"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if TABLE not in inspector.get_table_names():
        op.create_table(
            TABLE,
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("invoice_id", sa.Integer(), nullable=False),
            sa.Column("subject_ref", sa.String(length=64), nullable=False),
            sa.Column("retained_until", sa.Date(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.UniqueConstraint("invoice_id", name="uq_kept_invoices_invoice_id"),
        )
    indexes = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(TABLE)}
    for name, column in (
        ("ix_kept_invoices_subject_ref", "subject_ref"),
        ("ix_kept_invoices_retained_until", "retained_until"),
    ):
        if name not in indexes:
            op.create_index(name, TABLE, [column])


def downgrade() -> None:
    if TABLE in sa.inspect(op.get_bind()).get_table_names():
        op.drop_table(TABLE)
