"""stats indexes: the statistics page counts requests by the time they were handled
from an index (handled_at, outcome) instead of the whole ledger, which is kept for good
and grows every year (an index on the outbox's sent_at made SQLite's link times slower:
not added; bench/results/stats.md)

Revision ID: 0014_stats_indexes
Revises: 0010_web_limits
Create Date: 2026-12-08 00:00:00
"""

from alembic import op

revision = "0014_stats_indexes"
down_revision = "0013_near_miss"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ledger_handled_at", "ledger", ["handled_at", "outcome"])


def downgrade() -> None:
    op.drop_index("ix_ledger_handled_at", table_name="ledger")
