"""Service desks: every operation a person can trigger, behind every door (CLI, web).

Each desk takes plain values (and the deciding `Actor`) and returns frozen dataclasses
that an entry point renders as text, JSON or HTML. Only bootstrap builds them.
"""

from __future__ import annotations

from dataclasses import dataclass

from credmail.service.desks.audit import AuditDesk
from credmail.service.desks.backlog import BacklogDesk
from credmail.service.desks.base import DeskError
from credmail.service.desks.campaign import CampaignDesk
from credmail.service.desks.deferrals import DeferralsDesk
from credmail.service.desks.directory import DirectoryDesk
from credmail.service.desks.limits import LimitsDesk
from credmail.service.desks.near_miss import NearMissDesk
from credmail.service.desks.observe import ObserveDesk
from credmail.service.desks.outbox import OutboxDesk
from credmail.service.desks.privacy import PrivacyDesk
from credmail.service.desks.remembered import RememberedDesk
from credmail.service.desks.reset import ResetDesk
from credmail.service.desks.staff import StaffDesk
from credmail.service.desks.stats import StatsDesk
from credmail.service.desks.status import StatusDesk
from credmail.service.desks.tasks import TasksDesk
from credmail.service.desks.tokens import TokenDesk
from credmail.service.desks.trace import TraceDesk
from credmail.service.desks.worklist import WorklistDesk
from credmail.service.review import Actor, ReviewDesk, ReviewError

__all__ = [
    "Actor",
    "AuditDesk",
    "BacklogDesk",
    "CampaignDesk",
    "DeferralsDesk",
    "DeskError",
    "Desks",
    "DirectoryDesk",
    "LimitsDesk",
    "NearMissDesk",
    "ObserveDesk",
    "OutboxDesk",
    "PrivacyDesk",
    "RememberedDesk",
    "ResetDesk",
    "ReviewDesk",
    "ReviewError",
    "StaffDesk",
    "StatsDesk",
    "StatusDesk",
    "TasksDesk",
    "TokenDesk",
    "TraceDesk",
    "WorklistDesk",
]


@dataclass(frozen=True)
class Desks:
    review: ReviewDesk
    outbox: OutboxDesk
    limits: LimitsDesk
    directory: DirectoryDesk
    tokens: TokenDesk
    privacy: PrivacyDesk
    status: StatusDesk
    backlog: BacklogDesk
    trace: TraceDesk
    staff: StaffDesk
    audit: AuditDesk
    observe: ObserveDesk
    reset: ResetDesk
    tasks: TasksDesk
    campaign: CampaignDesk
    stats: StatsDesk
    deferrals: DeferralsDesk
    remembered: RememberedDesk
    worklist: WorklistDesk
    near_miss: NearMissDesk
