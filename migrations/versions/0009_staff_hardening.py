"""staff: the TOTP secret sealed (a longer column), the last accepted TOTP time step, and
which passwords may have been stored without their surrounding spaces

Revision ID: 0009_staff_hardening
Revises: 0008_sex_origin
Create Date: 2027-01-11 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_staff_hardening"
down_revision = "0008_sex_origin"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.alter_column(
            "totp_secret", existing_type=sa.String(length=64), type_=sa.String(length=300)
        )
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("password_trimmed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # The console stripped the spaces around a password, when setting it and at sign-in:
    # an account's hash may be of the stripped password (sign-in still accepts it so).
    op.execute(sa.text("UPDATE staff SET password_trimmed = :yes").bindparams(yes=True))


def downgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("password_trimmed")
        batch.drop_column("totp_last_step")
        batch.alter_column(
            "totp_secret", existing_type=sa.String(length=300), type_=sa.String(length=64)
        )
