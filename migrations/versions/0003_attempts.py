"""attempts: a crash-proof count of processing attempts per message; outbox time index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 11:35:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("folder", sa.String(length=500), nullable=False),
        sa.Column("validity", sa.Integer(), nullable=False),
        sa.Column("source_key", sa.String(length=300), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("folder", "validity", "source_key"),
    )
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])


def downgrade() -> None:
    raise NotImplementedError("credmail migrations are forward-only")
