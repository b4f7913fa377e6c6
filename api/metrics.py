"""Prometheus metrics of one app, in its own registry (so tests can build many apps in one process).

- ``adledger_engagements_total{outcome}``: engagements answered by intake (accepted, replay, conflict, invalid).
- ``adledger_outbox_engagements{status}``: the outbox backlog (queued, sent), counted in the database at scrape
  time, so it is right whichever process settled what. Settled and rejected rows are not counted: they only
  grow, and counting them would scan the table on every scrape; the backlog is what an operator alerts on.
- ``adledger_http_request_duration_seconds{method, route, status}``: latency by route template (``/v1/engagements/
  {campaign_id}/{event_id}``, never the raw path, which would make a series per id); unmatched paths share one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.settlement.outbox import IntakeOutcome, IntakeResult
from ledger.settlement.outbox_models import EngagementStatus, OutboxEngagement

log = logging.getLogger(__name__)

BACKLOG = (EngagementStatus.QUEUED, EngagementStatus.SENT)


class Metrics:
    def __init__(self, sessions: Callable[[], sessionmaker[Session] | None]) -> None:
        self.registry = CollectorRegistry()
        self.engagements = Counter(
            "adledger_engagements", "Engagements answered by intake, by outcome.", ["outcome"], registry=self.registry
        )
        for outcome in IntakeOutcome:
            self.engagements.labels(outcome.value)  # every series exists from the start, at 0
        self.latency = Histogram(
            "adledger_http_request_duration_seconds",
            "Time to answer a request, by route template.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.registry.register(_OutboxBacklog(sessions))

    def count_intake(self, results: list[IntakeResult]) -> None:
        for outcome in IntakeOutcome:
            count = sum(1 for result in results if result.outcome == outcome)
            if count:
                self.engagements.labels(outcome.value).inc(count)


class _OutboxBacklog(Collector):
    def __init__(self, sessions: Callable[[], sessionmaker[Session] | None]) -> None:
        self.sessions = sessions

    def describe(self) -> list[Metric]:
        return []  # collected at scrape time only: registering must not query the database

    def collect(self) -> Iterator[Metric]:
        sessions = self.sessions()
        if sessions is None:
            return
        try:
            with sessions() as session:
                counts = dict(
                    session.execute(  # the drain index (status, ...) serves this
                        select(OutboxEngagement.status, func.count())
                        .where(OutboxEngagement.status.in_(BACKLOG))
                        .group_by(OutboxEngagement.status)
                    ).all()
                )
        except SQLAlchemyError:
            log.warning("metrics: the outbox backlog could not be read", exc_info=True)
            return  # the other metrics still scrape
        gauge = GaugeMetricFamily(
            "adledger_outbox_engagements", "Engagements accepted and not yet final, by status.", labels=["status"]
        )
        for status in BACKLOG:
            gauge.add_metric([status.value], counts.get(status, 0))
        yield gauge


class RequestMetrics:
    """ASGI middleware timing each request under its route template (set in the scope by the router)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app raises before answering

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.latency.labels(scope["method"], route, str(status)).observe(time.perf_counter() - started)
