"""defer_remember: a review item can wait until a date (deferred_until); addresses the
secretariat added to a person on approving a request (remembered_addresses), kept apart
from the register's addresses so that a re-import does not wipe them

Revision ID: 0012_defer_remember
Revises: 0010_web_limits
Create Date: 2026-12-08 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_defer_remember"
down_revision = "0011_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_items") as batch:
        batch.add_column(sa.Column("deferred_until", sa.DateTime(), nullable=True))
    op.create_table(
        "remembered_addresses",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "person_id",
            sa.Integer(),
            sa.ForeignKey("people.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("address_key", sa.String(length=320), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=True),
        sa.UniqueConstraint("person_id", "address_key"),
    )
    op.create_index("ix_remembered_addresses_address_key", "remembered_addresses", ["address_key"])


def downgrade() -> None:
    op.drop_index("ix_remembered_addresses_address_key", "remembered_addresses")
    op.drop_table("remembered_addresses")
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("deferred_until")
