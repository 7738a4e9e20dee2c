"""campaigns and campaign_recipients (the September mailing to new students' guardians)

Revision ID: 0006_16
Revises: 0006_14
Create Date: 2026-11-28 19:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_16"
down_revision = "0006_14"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False, unique=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("start_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "campaign_recipients",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "campaign_id",
            sa.Integer(),
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("address_key", sa.String(length=320), nullable=False),
        sa.Column("student", sa.String(length=100), nullable=False),
        sa.Column("guardians", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("queued_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("campaign_id", "address_key", "student"),
    )
    op.create_index("ix_campaign_recipients_state", "campaign_recipients", ["campaign_id", "state"])
    op.create_index("ix_campaign_recipients_message_id", "campaign_recipients", ["message_id"])


def downgrade() -> None:
    op.drop_table("campaign_recipients")
    op.drop_table("campaigns")
