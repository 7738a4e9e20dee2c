"""people.language (ISO 639-1), people.new_student (September mailing), people.active (left)

Revision ID: 0005
Revises: 0004f
Create Date: 2026-11-28 19:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004f"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=True))
        batch.add_column(
            sa.Column("new_student", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.drop_column("active")
        batch.drop_column("new_student")
        batch.drop_column("language")
