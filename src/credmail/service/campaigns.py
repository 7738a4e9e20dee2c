"""The September campaign: plan, store, send in paced batches, exactly once.

`plan` is a dry run over the directory (core.campaign). `start` stores the campaign and
one row per (guardian address, student) pair under a unique key, so a repeated start or
`extend` adds only pairs not stored yet. The daemon's tick (`top_up`) moves planned pairs
into the outbox a batch at a time, one mail per address, in the same transaction that
marks them queued: a crash leaves them either planned (nothing queued) or queued (the
outbox sends each row once). The outbox sends campaign mail behind replies to requests.
Pause and cancel take the campaign's unsent mail back out of the outbox.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from credmail.core.addresses import address_key
from credmail.core.campaign import (
    PURPOSE_FIRST_ACCESS,
    TEMPLATE_CAMPAIGN,
    Plan,
    build_plan,
    estimate_duration,
)
from credmail.core.values import Person
from credmail.service.links import EXPIRY_PLACEHOLDER, KEYED_LINK, LINK_PLACEHOLDER
from credmail.service.outbox.queue import Mailer, spoken_languages
from credmail.service.pacing import PacingLimits
from credmail.service.ports import (
    CampaignInfo,
    CampaignState,
    Clock,
    PairRecord,
    PairState,
    PlannedPair,
    UnitOfWork,
    UnitOfWorkFactory,
)

DAY = timedelta(days=1)


class CampaignError(Exception):
    """A campaign command that cannot be carried out (unknown name, wrong state)."""


@dataclass(frozen=True)
class CampaignConfig:
    batch_size: int = 20
    daily_cap: int = 1000
    pace: PacingLimits = field(default_factory=PacingLimits)
    front_desk_hours: str = ""
    request_address: str = ""


@dataclass(frozen=True)
class Started:
    campaign: CampaignInfo
    created: bool  # False: it existed (a repeated start adds nothing)
    pairs_added: int


@dataclass(frozen=True)
class CampaignStatus:
    campaign: CampaignInfo
    counts: dict[str, int]
    mails_left: int
    estimated_end: datetime | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return sum(self.counts.get(s, 0) for s in ("sent", "failed", "bounced", "cancelled"))


class CampaignService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        mailer: Mailer,
        clock: Clock,
        timezone: ZoneInfo,
        config: CampaignConfig,
    ) -> None:
        self.uow, self.mailer, self.clock = uow, mailer, clock
        self.timezone, self.config = timezone, config
        self._topping = threading.Lock()  # the daemon's tick and the outbox worker's refill
        self.log = structlog.get_logger("credmail.campaign")

    # -- planning ---------------------------------------------------------------------

    def plan(self) -> Plan:
        with self.uow(read_only=True) as uow:
            return self._plan(uow)

    def _plan(self, uow: UnitOfWork) -> Plan:
        students, guardians = uow.campaigns.new_students()
        today = self.clock().astimezone(self.timezone).date()
        return build_plan(students, guardians, today, address_key)

    def estimate(self, mails: int) -> timedelta:
        pace = self.config.pace
        per_day = min(filter(None, [self.config.daily_cap, pace.per_day]))
        return estimate_duration(mails, pace.min_interval_seconds, per_day)

    # -- lifecycle --------------------------------------------------------------------

    def start(self, name: str, at: datetime | None, by: str | None) -> Started:
        """Store the campaign and its pairs; a repeated start changes nothing."""
        now = self.clock()
        with self.uow() as uow:
            existing = uow.campaigns.get(name)
            if existing is not None:
                return Started(existing, False, 0)
            campaign_id = uow.campaigns.create(name, at or now, now, by)
            added = uow.campaigns.add_pairs(campaign_id, _pairs(self._plan(uow)), now)
            uow.commit()
            info = uow.campaigns.get(name)
        assert info is not None
        self.log.info("campaign.started", campaign_id=campaign_id, pairs=added)
        return Started(info, True, added)

    def extend(self, name: str) -> int:
        """Add the pairs the directory has now and the campaign has not: only those go."""
        now = self.clock()
        with self.uow() as uow:
            info = self._get(uow, name)
            if info.status == CampaignState.CANCELLED:
                raise CampaignError(f"campaign {name!r} was cancelled")
            added = uow.campaigns.add_pairs(info.id, _pairs(self._plan(uow)), now)
            if added and info.status == CampaignState.DONE:
                uow.campaigns.set_status(info.id, CampaignState.RUNNING, now)
            uow.commit()
        self.log.info("campaign.extended", campaign_id=info.id, pairs=added)
        return added

    def pause(self, name: str) -> int:
        """Stop sending; the campaign's unsent mail leaves the outbox (planned again)."""
        with self.uow() as uow:
            info = self._get(uow, name)
            if info.status not in (CampaignState.RUNNING, CampaignState.PAUSED):
                raise CampaignError(f"campaign {name!r} is {info.status}")
            uow.campaigns.set_status(info.id, CampaignState.PAUSED, self.clock())
            withdrawn = uow.campaigns.withdraw(info.id, PairState.PLANNED)
            uow.commit()
        return withdrawn

    def resume(self, name: str) -> None:
        with self.uow() as uow:
            info = self._get(uow, name)
            if info.status != CampaignState.PAUSED:
                raise CampaignError(f"campaign {name!r} is {info.status}, not paused")
            uow.campaigns.set_status(info.id, CampaignState.RUNNING, self.clock())
            uow.commit()

    def cancel(self, name: str) -> int:
        """Nothing more goes; what was sent stays sent. Returns the pairs not sent."""
        with self.uow() as uow:
            info = self._get(uow, name)
            uow.campaigns.set_status(info.id, CampaignState.CANCELLED, self.clock())
            count = uow.campaigns.withdraw(info.id, PairState.CANCELLED)
            count += uow.campaigns.cancel_planned(info.id)
            uow.commit()
        return count

    def status(self, name: str) -> CampaignStatus:
        now = self.clock()
        with self.uow(read_only=True) as uow:
            info = self._get(uow, name)
            pairs = uow.campaigns.pairs(info.id)
        counts: dict[str, int] = {}
        for pair in pairs:
            counts[pair.state] = counts.get(pair.state, 0) + 1
        left = len({p.address_key for p in pairs if p.state == PairState.PLANNED})
        left += len({p.message_id for p in pairs if p.state == PairState.QUEUED})
        end = None
        if info.status in (CampaignState.RUNNING, CampaignState.PAUSED) and left:
            end = max(now, info.start_at) + self.estimate(left)
        return CampaignStatus(info, counts, left, end)

    def report(self, name: str) -> list[PairRecord]:
        with self.uow(read_only=True) as uow:
            return uow.campaigns.pairs(self._get(uow, name).id)

    def scheduled(self) -> list[CampaignInfo]:
        with self.uow(read_only=True) as uow:
            return uow.campaigns.scheduled()

    def _get(self, uow: UnitOfWork, name: str) -> CampaignInfo:
        info = uow.campaigns.get(name)
        if info is None:
            raise CampaignError(f"no campaign named {name!r} (see `credmail campaign start`)")
        return info

    # -- sending (the daemon's tick) --------------------------------------------------

    def top_up(self) -> int:
        """Queue the next batch of every due campaign; returns the mails queued. Safe to
        call from several threads or processes: one at a time per campaign does the work."""
        with self.uow(read_only=True) as uow:
            due = uow.campaigns.due(self.clock())
        queued = 0
        with self._topping:
            for info in due:
                try:
                    queued += self._top_up(info)
                except CampaignError:  # another process queued the same pairs first
                    self.log.info("campaign.concurrent_top_up", campaign_id=info.id)
        return queued

    def _room(self, uow: UnitOfWork, info: CampaignInfo, now: datetime) -> tuple[int, int]:
        """(mails that may be queued now, mails of the campaign waiting in the outbox)."""
        waiting = uow.campaigns.in_outbox(info.id)
        room = min(
            self.config.batch_size - waiting,
            self.config.daily_cap - uow.campaigns.sent_since(now - DAY),
        )
        return room, waiting

    def _top_up(self, info: CampaignInfo) -> int:
        now = self.clock()
        with self.uow(read_only=True) as uow:  # most ticks find the batch still going
            if self._room(uow, info, now)[0] <= 0:
                return 0
        with self.uow() as uow:
            uow.campaigns.lock(info.id)  # a concurrent top-up waits here, then finds less
            room, waiting = self._room(uow, info, now)
            if room <= 0:
                return 0
            groups = uow.campaigns.planned(info.id, room)
            if not groups and not waiting:
                uow.campaigns.set_status(info.id, CampaignState.DONE, now)
                uow.commit()
                self.log.info("campaign.done", campaign_id=info.id)
                return 0
            wanted = {name for group in groups for p in group for name in (p.student, *p.guardians)}
            people = uow.campaigns.people(sorted(wanted))
            queued = sum(self._queue(uow, info, group, people, now) for group in groups)
            uow.commit()
        if queued:
            self.log.info("campaign.queued", campaign_id=info.id, mails=queued)
        return queued

    def _queue(
        self,
        uow: UnitOfWork,
        info: CampaignInfo,
        group: Sequence[PairRecord],
        people: Mapping[str, Person],
        now: datetime,
    ) -> int:
        address, key = group[0].address or "", group[0].address_key
        students: list[dict[str, Any]] = []
        selectors: list[str] = []
        gone: list[str] = []
        expires: str | None = None
        for pair in group:
            person = people.get(pair.student)
            if person is None or not person.is_minor_on(now.astimezone(self.timezone).date()):
                gone.append(pair.student)  # left the directory, or came of age meanwhile
                continue
            issued = self.mailer.links.issue(
                uow, person, PURPOSE_FIRST_ACCESS, address, now, per_address=True
            )
            link = issued.url
            if issued.selector:
                selectors.append(issued.selector)
                link = KEYED_LINK.format(selector=issued.selector)
                expires = EXPIRY_PLACEHOLDER
            elif issued.expires_at is not None:
                expires = self.mailer.when(issued.expires_at)
            students.append(
                {
                    "first_name": person.first_name,
                    "last_name": person.last_name,
                    "username": person.username,
                    "link": link,
                }
            )
        if gone:
            uow.campaigns.drop(info.id, key, gone)
        if not students:
            return 0
        context = {
            "students": students,
            "student": students[0],
            "expires_at": expires,
            "front_desk_hours": self.config.front_desk_hours,
            "request_address": self.config.request_address,
        }
        assert LINK_PLACEHOLDER not in str(context)  # every link here is keyed
        # Italian first, then the languages of the guardians this mail goes to (issue 19),
        # in the replies' order (by username); Italian only when a translation is missing.
        guardians = sorted({g for pair in group for g in pair.guardians})
        mail = self.mailer.composer.compose(
            TEMPLATE_CAMPAIGN,
            address,
            context,
            None,
            now,
            languages=spoken_languages(people[g] for g in guardians if g in people),
            translated={"expires_at": self.mailer.plain_expiry(expires)},
            auto_submitted="auto-generated",
        )
        uow.outbox.add(
            mail, TEMPLATE_CAMPAIGN, now, token_selector=selectors[0] if selectors else None
        )
        changed = uow.campaigns.mark_queued(
            info.id, key, [s["username"] for s in students], mail.message_id, now
        )
        if changed != len(students):  # another process queued them: this whole batch waits
            raise CampaignError("campaign pairs queued concurrently; the batch is retried")
        return 1


def _pairs(plan: Plan) -> list[PlannedPair]:
    return [
        PlannedPair(mail.address, mail.address_key, student, mail.guardians)
        for mail in plan.mails
        for student in mail.students
    ]
