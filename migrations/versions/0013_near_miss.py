"""near_misses: mails that look like credential requests without the exact subject,
flagged in the mailbox and listed in the console until someone treats or dismisses them

Revision ID: 0013_near_miss
Revises: 0010_web_limits
Create Date: 2026-12-08 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_near_miss"
down_revision = "0012_defer_remember"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "near_misses",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "ledger_id",
            sa.Integer(),
            sa.ForeignKey("ledger.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("folder", sa.String(length=500), nullable=False),
        sa.Column("validity", sa.Integer(), nullable=False),
        sa.Column("source_key", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=True),
        sa.Column("sender_key", sa.String(length=320), nullable=True),
        sa.Column("message_id", sa.String(length=998), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("guided", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("keyword_wanted", sa.Boolean(), nullable=False),
        sa.Column("keyword_set", sa.Boolean(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decision", sa.String(length=20), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.UniqueConstraint("folder", "validity", "source_key", name="uq_near_misses_source"),
    )
    op.create_index("ix_near_misses_status", "near_misses", ["status"])
    op.create_index("ix_near_misses_sender_key", "near_misses", ["sender_key", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_near_misses_sender_key", table_name="near_misses")
    op.drop_index("ix_near_misses_status", table_name="near_misses")
    op.drop_table("near_misses")
