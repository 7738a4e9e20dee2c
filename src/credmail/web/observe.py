"""`/healthz` and `/metrics` for the sysadmin's monitoring, computed from the database at
each request (the daemon writes everything they read: no endpoint of its own)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from credmail.service.desks.observe import Figures, ObserveDesk


class FiguresCollector:
    """One scrape: the figures read once, exposed as gauges (they can go down: the ledger
    and the audit log are pruned by retention)."""

    def __init__(self, figures: Figures) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        f = self.figures
        requests = GaugeMetricFamily(
            "credmail_requests",
            "Handled messages on record, by outcome and reason",
            labels=["outcome", "reason"],
        )
        for (outcome, reason), count in sorted(f.requests.items()):
            requests.add_metric([outcome, reason], count)
        yield requests
        yield GaugeMetricFamily(
            "credmail_review_queue_size", "Requests waiting for review", value=f.review_pending
        )
        yield GaugeMetricFamily(
            "credmail_review_deferred",
            "Requests deferred to a later date (out of the review queue until then)",
            value=f.review_deferred,
        )
        outbox = GaugeMetricFamily("credmail_outbox", "Outgoing mail by state", labels=["state"])
        for state in sorted({"pending", "sent", "failed", "bounced", *f.outbox}):
            outbox.add_metric([state], f.outbox.get(state, 0))
        yield outbox
        age = f.last_sync_age_seconds
        yield GaugeMetricFamily(
            "credmail_last_sync_age_seconds",
            "Seconds since the last successful mailbox sync (-1: never)",
            value=-1 if age is None else age,
        )
        yield GaugeMetricFamily(
            "credmail_sign_in_failures",
            "Failed console sign-ins on record in the audit log",
            value=f.sign_in_failures,
        )
        yield GaugeMetricFamily(
            "credmail_circuit_breaker_tripped",
            "1 while the global circuit breaker sends everything to review",
            value=1 if f.breaker_tripped else 0,
        )


Endpoint = Callable[[Request], Awaitable[Response]]


def health_endpoint(desk: ObserveDesk) -> Endpoint:
    async def healthz(request: Request) -> Response:
        health = await run_in_threadpool(desk.health)
        return JSONResponse(health.as_json(), status_code=200 if health.ok else 503)

    return healthz


def metrics_endpoint(desk: ObserveDesk) -> Endpoint:
    async def metrics(request: Request) -> Response:
        figures = await run_in_threadpool(desk.figures)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(FiguresCollector(figures))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
