"""people.sex (the register's sex field, for the words of the replies) and
link_tokens.origin (why a link was sent: request, approval or campaign)

Revision ID: 0008_sex_origin
Revises: 0007_uts46_keys
Create Date: 2026-12-07 21:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_sex_origin"
down_revision = "0007_uts46_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("sex", sa.String(length=1), nullable=True))
    with op.batch_alter_table("link_tokens") as batch:
        batch.add_column(sa.Column("origin", sa.String(length=20), nullable=True))
    # Links of the September mailing existed before this column: say so.
    op.execute("UPDATE link_tokens SET origin = 'campaign' WHERE purpose = 'student_first_access'")


def downgrade() -> None:
    with op.batch_alter_table("link_tokens") as batch:
        batch.drop_column("origin")
    with op.batch_alter_table("people") as batch:
        batch.drop_column("sex")
