"""Prometheus metrics, one registry per app (tests build many apps in one process); under
``okryu serve --workers``, prometheus_client's multiprocess mode, so every worker's ``/metrics``
shows the counts of all.

``prometheus-client`` is the reference client: its text exposition is what Prometheus
scrapes, and its counters cost about a microsecond on the hop's path.
"""

from __future__ import annotations

import os
import time
from collections import deque

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

HOP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


class Metrics:
    """Everything the gateway counts."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.hops = Counter(
            "okryu_hops", "USSD hops answered, by channel and the screen shown",
            ["channel", "screen"], registry=registry,
        )  # fmt: skip
        self.hop_seconds = Histogram(
            "okryu_hop_seconds", "Time to answer a USSD hop", ["channel"],
            buckets=HOP_BUCKETS, registry=registry,
        )  # fmt: skip
        self.sessions = Counter(
            "okryu_sessions", "USSD sessions started, resumed, abandoned or ended otherwise",
            ["event"], registry=registry,
        )  # fmt: skip
        # Read from the database at each scrape: right across every gateway process (and, of
        # workers' values, the latest is the count).
        self.orders = Gauge(
            "okryu_orders", "Orders by status now", ["status"], registry=registry,
            multiprocess_mode="mostrecent",
        )  # fmt: skip
        self.sms = Gauge(
            "okryu_sms", "Outbound SMS by state now", ["state"], registry=registry,
            multiprocess_mode="mostrecent",
        )  # fmt: skip
        self.sms_receipts = Counter(
            "okryu_sms_receipts", "Final delivery receipts recorded, one per SMS part, by state",
            ["state"], registry=registry,
        )  # fmt: skip
        self.replies_dropped = Counter(
            "okryu_sms_replies_dropped",
            "SMS replies not sent: to a region not served, or over a sender's or the hourly limit",
            ["reason"], registry=registry,
        )  # fmt: skip
        self.errors = Counter(
            "okryu_errors", "Failures by component (redis, database, hop)", ["component"],
            registry=registry,
        )  # fmt: skip
        self._recent: deque[float] = deque(maxlen=100_000)  # hop end times, for the rate
        # The labelled children a hop counts with, by (channel, screen): a bounded set.
        self._children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self.inflight = Gauge(
            "okryu_hops_in_flight", "USSD hops being answered now", registry=registry,
            multiprocess_mode="livesum",
        )  # fmt: skip

    def hop_answered(self, channel: str, screen: str, seconds: float) -> None:
        """Count a hop answered on ``channel`` with ``screen`` after ``seconds``."""
        children = self._children.get((channel, screen))
        if children is None:  # labels() takes a lock and builds a key: once per pair
            children = (self.hops.labels(channel, screen), self.hop_seconds.labels(channel))
            self._children[(channel, screen)] = children
        children[0].inc()
        children[1].observe(seconds)
        self._recent.append(time.monotonic())

    def hop_rate(self, window: float = 10.0) -> float:
        """Hops per second over the last ``window`` seconds, in this process."""
        since = time.monotonic() - window
        while self._recent and self._recent[0] < since:
            self._recent.popleft()
        return round(len(self._recent) / window, 2)

    def render(self, orders: dict[str, int], sms: dict[str, int]) -> bytes:
        """The exposition, with the database's current counts."""
        for status, count in orders.items():
            self.orders.labels(status).set(count)
        for state, count in sms.items():
            self.sms.labels(state).set(count)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Workers of one okryu serve (gateway.workers): every worker's counts, added up.
            every = CollectorRegistry()
            multiprocess.MultiProcessCollector(every)  # type: ignore[no-untyped-call]
            return generate_latest(every)
        return generate_latest(self.registry)
