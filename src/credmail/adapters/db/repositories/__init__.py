"""SQLAlchemy implementations of the storage ports, one module per aggregate; none commits."""

from credmail.adapters.db.repositories.campaigns import SqlCampaigns
from credmail.adapters.db.repositories.directory import SqlDirectory, to_person
from credmail.adapters.db.repositories.ledger import SqlAttempts, SqlCheckpoints, SqlLedger
from credmail.adapters.db.repositories.limits import SqlBreaker
from credmail.adapters.db.repositories.near_misses import SqlNearMisses
from credmail.adapters.db.repositories.notices import SqlNotices
from credmail.adapters.db.repositories.outbox import SqlOutbox
from credmail.adapters.db.repositories.remembered import SqlRemembered
from credmail.adapters.db.repositories.review import SqlReview
from credmail.adapters.db.repositories.staff import SqlAudit, SqlStaff
from credmail.adapters.db.repositories.tasks import SqlLinkAudit, SqlTasks
from credmail.adapters.db.repositories.tokens import SqlTokens

__all__ = [
    "SqlAttempts",
    "SqlAudit",
    "SqlBreaker",
    "SqlCampaigns",
    "SqlCheckpoints",
    "SqlDirectory",
    "SqlLedger",
    "SqlLinkAudit",
    "SqlNearMisses",
    "SqlNotices",
    "SqlOutbox",
    "SqlRemembered",
    "SqlReview",
    "SqlStaff",
    "SqlTasks",
    "SqlTokens",
    "to_person",
]
