"""consent roll-up: recent histories

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Subject histories written since the last merge get their own small table, so an incremental
refresh of the consent roll-up writes a few MB instead of rewriting pages all through the
large history table (DESIGN.md "Scale and speed"). Checks first, like 0001 and 0002.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if not sa.inspect(op.get_bind()).has_table("consent_rollup_recent"):
        op.create_table(
            "consent_rollup_recent",
            sa.Column("subject_ref", sa.CHAR(length=32), nullable=False),
            sa.Column("purpose", sa.String(length=40), nullable=False),
            sa.Column("history", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("subject_ref", "purpose"),
            sqlite_with_rowid=False,
        )


def downgrade() -> None:
    # Without the recent histories the large table is out of date: the roll-up is marked
    # empty, so the next refresh builds it again from the consent events.
    op.drop_table("consent_rollup_recent")
    state = sa.table("consent_rollup_state", sa.column("status"), sa.column("build_token"))
    op.get_bind().execute(sa.update(state).values(status="empty", build_token=None))
