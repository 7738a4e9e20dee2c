"""notifications and alert_states: the secretariat's digest and the sysadmin's alerts,
each slot queued exactly once

Revision ID: 0011_notify
Revises: 0010_web_limits
Create Date: 2026-12-08 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_notify"
down_revision = "0010_web_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("slot", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("mails", sa.Integer(), nullable=False),
        sa.UniqueConstraint("kind", "slot", name="uq_notifications_slot"),
    )
    op.create_table(
        "alert_states",
        sa.Column("name", sa.String(length=40), primary_key=True),
        sa.Column("announced", sa.Boolean(), nullable=False),
        sa.Column("alerted_at", sa.DateTime(), nullable=True),
        sa.Column("mails", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("alert_states")
    op.drop_table("notifications")
