"""The September campaign: plan, store, send in paced batches, exactly once.

`plan` is a dry run over the directory (core.campaign). `start` stores the campaign and
one row per (guardian address, student) pair under a unique key, so a repeated start or
`extend` adds only pairs not stored yet. The daemon's tick (`top_up`) moves planned pairs
into the outbox a batch at a time, one mail per address, in the same transaction that
marks them queued: a crash leaves them either planned (nothing queued) or queued (the
outbox sends each row once). The outbox sends campaign mail behind replies to requests.
Pause and cancel take the campaign's unsent mail back out of the outbox. Pairs to PEC
addresses are stored `skipped` unless the school sends to PEC; a start where no mailed
student has a register login code is refused unless asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog

from credmail.core.addresses import address_key
from credmail.core.campaign import (
    PURPOSE_FIRST_ACCESS,
    TEMPLATE_CAMPAIGN,
    Plan,
    PlannedMail,
    build_plan,
    estimate_duration,
)
from credmail.core.values import Person
from credmail.service.campaign_mail import (
    NothingToPreview,
    Preview,
    chosen_mail,
    compose_campaign_mail,
    filled_preview,
    made_up_codes,
    no_codes_refusal,
    preview_links,
)
from credmail.service.links import (
    EXPIRY_PLACEHOLDER,
    KEYED_LINK,
    LINK_PLACEHOLDER,
    TemplateLinkIssuer,
)
from credmail.service.outbox.queue import Mailer
from credmail.service.pacing import PacingLimits
from credmail.service.ports import (
    ORIGIN_CAMPAIGN,
    CampaignInfo,
    CampaignState,
    Clock,
    OutgoingMail,
    PairRecord,
    PairState,
    PlannedPair,
    UnitOfWork,
    UnitOfWorkFactory,
)
from credmail.service.register_rows import is_pec

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
    send_to_pec: bool = False


@dataclass(frozen=True)
class Started:
    campaign: CampaignInfo
    created: bool  # False: it existed (a repeated start adds nothing)
    pairs_added: int
    pairs_skipped: int = 0  # to PEC addresses: stored, never sent
    made_up_codes: tuple[str, ...] = ()  # mailed students with no register login code
    students: int = 0  # students mailed


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
        finished = ("sent", "failed", "bounced", "cancelled", PairState.SKIPPED)
        return sum(self.counts.get(s, 0) for s in finished)


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
        pec = None if self.config.send_to_pec else is_pec
        return build_plan(students, guardians, today, address_key, pec=pec)

    def estimate(self, mails: int) -> timedelta:
        pace = self.config.pace
        per_day = min(filter(None, [self.config.daily_cap, pace.per_day]))
        return estimate_duration(mails, pace.min_interval_seconds, per_day)

    # -- lifecycle --------------------------------------------------------------------

    def start(
        self, name: str, at: datetime | None, by: str | None, *, without_codes: bool = False
    ) -> Started:
        """Store the campaign and its pairs; a repeated start changes nothing. Refused when
        no mailed student has a register login code, unless `without_codes`."""
        now = self.clock()
        with self.uow() as uow:
            existing = uow.campaigns.get(name)
            if existing is not None:
                return Started(existing, False, 0)
            plan = self._plan(uow)
            refusal = None if without_codes else no_codes_refusal(plan)
            if refusal:
                raise CampaignError(refusal)
            campaign_id = uow.campaigns.create(name, at or now, now, by)
            added, skipped = self._store(uow, campaign_id, plan, now)
            uow.commit()
            info = uow.campaigns.get(name)
        assert info is not None
        self.log.info("campaign.started", campaign_id=campaign_id, pairs=added, skipped=skipped)
        made_up = tuple(made_up_codes(plan))
        return Started(info, True, added, skipped, made_up, plan.reached_students)

    def _store(
        self, uow: UnitOfWork, campaign_id: int, plan: Plan, now: datetime
    ) -> tuple[int, int]:
        """(pairs to send, pairs skipped) stored now; a skipped pair the plan now sends
        (the school turned send_to_pec on) is planned again."""
        added = uow.campaigns.add_pairs(campaign_id, _pairs(plan.mails), now)
        skipped = uow.campaigns.add_pairs(campaign_id, _pairs(plan.skipped), now, PairState.SKIPPED)
        return added, skipped

    def extend(self, name: str) -> int:
        """Add the pairs the directory has now and the campaign has not: only those go."""
        now = self.clock()
        with self.uow() as uow:
            info = self._get(uow, name)
            if info.status == CampaignState.CANCELLED:
                raise CampaignError(f"campaign {name!r} was cancelled")
            added = self._store(uow, info.id, self._plan(uow), now)[0]
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

    def listing(self) -> list[CampaignInfo]:
        with self.uow(read_only=True) as uow:
            return uow.campaigns.listing()

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
        today = now.astimezone(self.timezone).date()
        present = [people[p.student] for p in group if p.student in people]
        present = [person for person in present if person.is_minor_on(today)]
        gone = {p.student for p in group} - {person.username for person in present}
        if gone:  # left the directory, or came of age meanwhile
            uow.campaigns.drop(info.id, key, sorted(gone))
        if not present:
            return 0
        students: list[tuple[Person, str]] = []
        selectors: list[str] = []
        expires: str | None = None
        for person in present:
            issued = self.mailer.links.issue(
                uow,
                person,
                PURPOSE_FIRST_ACCESS,
                address,
                now,
                per_address=True,
                origin=ORIGIN_CAMPAIGN,
            )
            link = issued.url
            if issued.selector:
                selectors.append(issued.selector)
                link = KEYED_LINK.format(selector=issued.selector)
                expires = EXPIRY_PLACEHOLDER
            elif issued.expires_at is not None:
                expires = self.mailer.when(issued.expires_at)
            assert link != LINK_PLACEHOLDER  # every link here is keyed
            students.append((person, link))
        guardians = sorted({g for pair in group for g in pair.guardians})
        mail = self._compose(address, students, expires, guardians, people, now)
        uow.outbox.add(
            mail, TEMPLATE_CAMPAIGN, now, token_selector=selectors[0] if selectors else None
        )
        changed = uow.campaigns.mark_queued(
            info.id, key, [person.username for person in present], mail.message_id, now
        )
        if changed != len(students):  # another process queued them: this whole batch waits
            raise CampaignError("campaign pairs queued concurrently; the batch is retried")
        return 1

    def _compose(
        self,
        address: str,
        students: Sequence[tuple[Person, str]],
        expires: str | None,
        guardians: Sequence[str],
        people: Mapping[str, Person],
        now: datetime,
    ) -> OutgoingMail:
        """The mail in the guardians' languages, as a family gets it before its links are
        filled in when it leaves: the send and the preview both render through here."""
        school = {
            "front_desk_hours": self.config.front_desk_hours,
            "request_address": self.config.request_address,
        }
        speakers = [people[g] for g in guardians if g in people]
        return compose_campaign_mail(self.mailer, school, address, students, expires, speakers, now)

    # -- the preview (nothing stored, no link reserved) -------------------------------

    def preview(self, who: str | None) -> Preview:
        """One planned mail as its family would read it, the link and its expiry shown as
        placeholders. `who`: a new student's or guardian's username, or an address."""
        now = self.clock()
        with self.uow(read_only=True) as uow:
            plan = self._plan(uow)
        try:
            mail, skipped = chosen_mail(plan, who, address_key(who) if who else None)
        except NothingToPreview as exc:
            raise CampaignError(str(exc)) from None
        return Preview(mail, self._render(plan, mail, now), skipped)

    def _render(self, plan: Plan, mail: PlannedMail, now: datetime) -> OutgoingMail:
        """Composed as `_queue` does (keyed links, the expiry left to the send), then
        filled in as the send does, with the placeholders instead of link and date."""
        links = preview_links(len(mail.students))
        students = [(plan.people[s], key) for s, key in zip(mail.students, links, strict=True)]
        deferred = not isinstance(self.mailer.links, TemplateLinkIssuer)  # a token's expiry
        expires = EXPIRY_PLACEHOLDER if deferred else None
        queued = self._compose(mail.address, students, expires, mail.guardians, plan.people, now)
        return filled_preview(queued, links)


def _pairs(mails: Sequence[PlannedMail]) -> list[PlannedPair]:
    return [
        PlannedPair(mail.address, mail.address_key, student, mail.guardians)
        for mail in mails
        for student in mail.students
    ]
