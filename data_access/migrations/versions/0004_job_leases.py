"""job leases

Revision ID: 0004_job_leases
Revises: 0003
Create Date: 2026-12-03

A job's claim becomes a lease with a heartbeat (DESIGN.md "Actions"): who claimed it, when,
until when the claim holds, and which claim it is. A job left 'running' by a killed process
is then seen as interrupted once its lease expires, and can be resumed. Jobs left 'running'
before this migration have no lease: they count as interrupted at once. Checks first, like
0001-0003, so a run interrupted on MariaDB finishes when run again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_job_leases"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = (
    ("claimed_by", sa.String(length=320)),
    ("claimed_at", sa.DateTime()),
    ("lease_expires_at", sa.DateTime()),
    ("claim_token", sa.String(length=32)),
)


def _existing() -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns("jobs")}


def upgrade() -> None:
    existing = _existing()
    for name, type_ in COLUMNS:
        if name not in existing:
            op.add_column("jobs", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    existing = _existing()
    with op.batch_alter_table("jobs") as batch:
        for name, _type in reversed(COLUMNS):
            if name in existing:
                batch.drop_column(name)
