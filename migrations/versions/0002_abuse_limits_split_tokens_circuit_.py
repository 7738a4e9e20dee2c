"""abuse limits, split tokens, circuit breaker

Link tokens change format (selector + verifier, bound to the directory state), so the
table is rebuilt: links issued before this migration stop working, as they would have
within `links.ttl_minutes` anyway.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 11:19:53.262429
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "circuit_breaker",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tripped_at", sa.DateTime(), nullable=True),
        sa.Column("reset_at", sa.DateTime(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.drop_index("ix_link_tokens_subject", table_name="link_tokens")
    op.drop_table("link_tokens")
    op.create_table(
        "link_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("selector", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.String(length=50), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("address_key", sa.String(length=320), nullable=True),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("selector"),
    )
    op.create_index("ix_link_tokens_subject", "link_tokens", ["username", "purpose"])
    op.create_index("ix_link_tokens_address_key", "link_tokens", ["address_key"])
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recipient_key", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("username", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("purpose", sa.String(length=50), nullable=True))
        batch_op.alter_column("recipient", existing_type=sa.String(length=320), nullable=True)
        batch_op.create_index("ix_outbox_account", ["username", "purpose", "created_at"])
        batch_op.create_index("ix_outbox_recipient_key", ["recipient_key", "created_at"])


def downgrade() -> None:
    raise NotImplementedError("credmail migrations are forward-only")
