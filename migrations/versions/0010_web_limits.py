"""web_limits: the reset page's per-client counters, in the database so that every
`credmail web` process of a school counts together

Revision ID: 0010_web_limits
Revises: 0009_staff_hardening
Create Date: 2026-12-10 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_web_limits"
down_revision = "0009_staff_hardening"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_limits",
        sa.Column("name", sa.String(length=20), primary_key=True),
        sa.Column("client", sa.String(length=64), primary_key=True),
        sa.Column("window_start", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hits", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("web_limits")
