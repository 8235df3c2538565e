"""job leases

Revision ID: 0004_job_leases
Revises: 0003
Create Date: 2026-12-03

A job's claim becomes a lease with a heartbeat (DESIGN.md "Actions"): who claimed it, when,
until when the claim holds, and which claim it is. A job left 'running' by a killed process
is then seen as interrupted once its lease expires, and can be resumed. Jobs left 'running'
before this migration have no lease: they count as interrupted at once. An index on the
steps' targets finds who did a step when two jobs hold the same target. Checks first, like
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


INDEX = "ix_job_steps_target"  # who did a step for a target (two DPOs, one account)


def _indexes() -> set[str]:
    return {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("job_steps")}


def _existing() -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns("jobs")}


def upgrade() -> None:
    existing = _existing()
    for name, type_ in COLUMNS:
        if name not in existing:
            op.add_column("jobs", sa.Column(name, type_, nullable=True))
    if INDEX not in _indexes():
        op.create_index(INDEX, "job_steps", ["target", "step"])


def downgrade() -> None:
    if INDEX in _indexes():
        op.drop_index(INDEX, table_name="job_steps")
    existing = _existing()
    with op.batch_alter_table("jobs") as batch:
        for name, _type in reversed(COLUMNS):
            if name in existing:
                batch.drop_column(name)
