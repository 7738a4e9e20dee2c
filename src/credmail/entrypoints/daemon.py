"""`credmail run`: the watcher and the outbox worker on their threads, APScheduler jobs; the
main thread waits for a signal and bounds the stop."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from types import FrameType
from typing import Any

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from credmail.bootstrap import App, explain
from credmail.runners.delivery_process import DeliveryProcess
from credmail.runners.nudge import NudgeWatcher
from credmail.runners.shutdown import ShutdownBound
from credmail.runners.systemd import Heartbeat
from credmail.runners.watcher import InboxWatcher
from credmail.service.housekeeping import housekeeping
from credmail.service.notify.alerts import Watch
from credmail.service.outbox.delivery import DeliveryStats
from credmail.service.outbox.worker import OutboxWorker
from credmail.service.privacy import Retention


def warn_about_settings(app: App) -> None:
    """Say loudly at start when the settings weaken or disable a protection."""
    log = structlog.get_logger("credmail.daemon")
    auth = app.settings.auth
    if auth.require == "off":
        log.warning(
            "auth.disabled",
            hint="sender authentication is off: only safe behind a "
            "server that rejects unauthenticated mail",
        )
    elif not auth.trusted_authserv_ids and not auth.verify_dkim:
        log.warning(
            "auth.nothing_trusted",
            hint="no trusted_authserv_ids and verify_dkim off: every request will go to review",
        )


def run_once(app: App, *, deliver_alongside: bool = False) -> dict[str, object]:
    """Handle what is in the mailbox now, deliver the outbox, return a summary.

    `deliver_alongside`: a forked process delivers while this one decides (see
    `runners.delivery_process`); otherwise, or where it cannot fork, delivery follows."""
    warn_about_settings(app)
    helper = DeliveryProcess.start(app.delivery, app.engine) if deliver_alongside else None
    processor = app.pipeline.processor
    nudge = processor.on_outbox
    if helper is not None:
        processor.on_outbox = helper.nudge
    try:
        source = app.source_factory()
        try:
            stats = app.pipeline.sync(source)
        finally:
            source.close()
        app.campaigns.top_up()  # a due campaign's next batch goes with this run
    finally:
        processor.on_outbox = nudge
        alongside = helper.finish() if helper is not None else DeliveryStats()
    delivery = asyncio.run(app.delivery.drain())  # all of it, or what the helper left
    return {
        "scanned": stats.scanned,
        "handled": stats.handled,
        "skipped_requests": stats.skipped_requests,
        "near_misses": stats.near_misses,
        "sent": alongside.sent + delivery.sent,
        "retried": alongside.retried + delivery.retried,
        "failed": alongside.failed + delivery.failed,
    }


def run_forever(app: App) -> None:
    """Work until SIGTERM or SIGINT: the message in hand is finished, and the process exits
    within `daemon.shutdown_seconds` whatever the servers do (runners.shutdown)."""
    log = structlog.get_logger("credmail.daemon")
    warn_about_settings(app)
    outbox = app.outbox_worker  # bootstrap wired its nudge to the request handler
    outbox.refill = app.campaigns.top_up  # only the daemon sends campaigns
    stop = outbox.stop
    heartbeat = Heartbeat()
    watcher = InboxWatcher(
        app.pipeline, app.source_factory(), stop, heartbeat, app.is_login_failure, explain=explain
    )
    scheduler = _scheduler(app, watcher, outbox)
    bound = ShutdownBound(app.settings.daemon.shutdown_seconds)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info(
            "daemon.stopping", signal=signal.Signals(signum).name, within_seconds=bound.seconds
        )
        bound.start()
        heartbeat.stopping()
        stop.set()
        outbox.nudge()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    crashed: list[BaseException] = []
    threads = [
        threading.Thread(target=outbox.run, name="outbox", daemon=True),
        threading.Thread(target=_watch(watcher, crashed), name="watcher", daemon=True),
    ]
    listener = app.nudge_listener()
    if listener is not None:  # decisions made elsewhere wake the outbox (runners.nudge)
        nudges = NudgeWatcher(listener, outbox.nudge, stop, app.nudge_mode)
        threads.append(threading.Thread(target=nudges.run, name="nudge", daemon=True))
    for thread in threads:
        thread.start()
    scheduler.start()
    outbox.nudge()
    log.info("daemon.started", mailbox=app.settings.mailbox.kind)
    try:
        while not stop.is_set():  # sleep, not stop.wait(): the handler sets `stop`, and
            time.sleep(0.5)  # must never find its lock held by the thread it interrupted
    finally:
        scheduler.shutdown(wait=False)
        stop.set()
        outbox.nudge()
        busy = [thread.name for thread in threads if not bound.join(thread)]
        log.info("daemon.stopped", left_busy=busy or None)
    if crashed:
        raise crashed[0]


def _watch(watcher: InboxWatcher, crashed: list[BaseException]) -> Callable[[], None]:
    """The watcher's thread: should it ever end by itself, the daemon stops and `run`
    fails with its error, as when it ran on the main thread."""

    def watch() -> None:
        try:
            watcher.run()
        except BaseException as exc:
            crashed.append(exc)
        finally:
            watcher.stop.set()

    return watch


def _scheduler(app: App, watcher: InboxWatcher, outbox: OutboxWorker) -> BackgroundScheduler:
    settings = app.settings
    scheduler = BackgroundScheduler(timezone=app.timezone)
    common = {"coalesce": True, "max_instances": 1}
    scheduler.add_job(
        watcher.poll_now.set,
        "interval",
        id="reconcile",
        seconds=settings.mailbox.poll_interval_seconds,
        **common,
    )
    scheduler.add_job(
        outbox.nudge,
        "interval",
        id="outbox",
        seconds=settings.daemon.outbox_interval_seconds,
        **common,
    )
    _schedule_campaigns(app, scheduler, outbox)
    _schedule_notify(app, scheduler, outbox, watcher)
    retention = Retention(settings.privacy.retention_days)
    scheduler.add_job(
        lambda: housekeeping(app.uow, app.clock, retention, app.checkpoint),
        "interval",
        id="housekeeping",
        minutes=settings.daemon.housekeeping_interval_minutes,
        **common,
    )
    return scheduler


def _schedule_notify(
    app: App, scheduler: BackgroundScheduler, outbox: OutboxWorker, watcher: InboxWatcher
) -> None:
    """The digest and the alerts, looked at every `notify.tick_seconds` and once at start
    (a digest missed while the daemon was down goes late the same day)."""
    log = structlog.get_logger("credmail.notify")
    watch = Watch(app.clock(), lambda: watcher.missing)

    def tick() -> None:
        try:
            queued = app.digest.run_due()
            alerted = app.alerts.check(watch)
        except Exception as exc:  # the database away: the next tick tries again
            log.warning("notify.failed", error_type=type(exc).__name__, error=explain(exc))
            return
        log.debug("notify.checked", digest_mails=queued, alerts=alerted)
        if queued or alerted:
            outbox.nudge()

    scheduler.add_job(
        tick,
        "interval",
        id="notify",
        seconds=app.settings.notify.tick_seconds,
        next_run_time=datetime.now(app.timezone),
        coalesce=True,
        max_instances=1,
    )


def _schedule_campaigns(app: App, scheduler: BackgroundScheduler, outbox: OutboxWorker) -> None:
    """Campaigns are rescheduled from the campaigns table at every start (no job store:
    the table is the truth, and a job store would pickle callables into the database).
    A tick tops the outbox up; a campaign starting later also gets a job at its time."""

    def tick() -> None:
        if app.campaigns.top_up():
            outbox.nudge()

    common: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    scheduler.add_job(
        tick, "interval", id="campaigns", seconds=app.settings.campaign.tick_seconds, **common
    )
    now = app.clock()
    for campaign in app.campaigns.scheduled():
        if campaign.start_at > now:
            scheduler.add_job(
                tick,
                "date",
                id=f"campaign-{campaign.id}",
                run_date=campaign.start_at,
                **common,
            )
