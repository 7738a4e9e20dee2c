"""delivery_state: a paused delivery and the last delivery error; outbox.token_selector

Revision ID: 0004c
Revises: 0003
Create Date: 2026-11-28 16:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004c"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("paused_at", sa.DateTime(), nullable=True),
        sa.Column("pause_reason", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.add_column("outbox", sa.Column("token_selector", sa.String(length=32), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("credmail migrations are forward-only")
