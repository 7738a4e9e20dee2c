"""The reset page: register_tasks (worklist backend), link_audit, link_tokens.claimed_until

Revision ID: 0006_13a
Revises: 0005
Create Date: 2026-11-28 19:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_13a"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("link_tokens") as batch:
        batch.add_column(sa.Column("claimed_until", sa.DateTime(), nullable=True))
    op.create_table(
        "register_tasks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("selector", sa.String(length=32), nullable=False, unique=True),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.String(length=50), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("first_name", sa.String(length=200), nullable=False),
        sa.Column("last_name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("address_key", sa.String(length=320), nullable=True),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.Column("done_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index("ix_register_tasks_status", "register_tasks", ["status", "confirmed_at"])
    op.create_index("ix_register_tasks_address_key", "register_tasks", ["address_key"])
    op.create_table(
        "link_audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("selector", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=True),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("backend", sa.String(length=20), nullable=False),
        sa.Column("result", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("client", sa.String(length=64), nullable=True),
    )
    op.create_index("ix_link_audit_at", "link_audit", ["at"])
    op.create_index("ix_link_audit_selector", "link_audit", ["selector"])


def downgrade() -> None:
    op.drop_table("link_audit")
    op.drop_index("ix_register_tasks_address_key", "register_tasks")
    op.drop_index("ix_register_tasks_status", "register_tasks")
    op.drop_table("register_tasks")
    with op.batch_alter_table("link_tokens") as batch:
        batch.drop_column("claimed_until")
