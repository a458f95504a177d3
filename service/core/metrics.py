"""Prometheus metrics: request statistics and scrape-time collectors.

:class:`HttpStats` counts requests by method, route template and status (the
HTTP edge feeds it); :func:`register_collector` adds gauges computed at scrape
time (the events outbox and the webhooks package register theirs);
:func:`exposition` renders them in the text format 0.0.4 for ``GET /metrics``.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Callable, Iterable

from prometheus_client import PLATFORM_COLLECTOR, PROCESS_COLLECTOR
from prometheus_client.core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

#: Upper bounds (seconds) of the latency histogram buckets.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The media type of :func:`exposition`.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

#: ``fn(engine)`` returning metric families; run in a worker thread at scrape time.
CollectorFn = Callable[[Engine], Iterable[Metric]]
_collectors: dict[str, CollectorFn] = {}


def register_collector(name: str, fn: CollectorFn) -> None:
    """Add (or replace) the scrape-time collector ``name``.

    ``fn(engine)`` returns ``prometheus_client.core`` metric families (e.g.
    ``GaugeMetricFamily("imi_webhook_deliveries_due", "…", value=n)``). It runs
    in a worker thread for every scrape of ``/metrics``; a collector that
    raises is skipped (and logged) so one broken query never hides the rest.
    Names should start with ``imi_``.
    """
    _collectors[name] = fn


def registered_collectors() -> list[str]:
    """Names of the registered scrape-time collectors."""
    return sorted(_collectors)


class HttpStats:
    """Request counts and latency histograms kept in one plain dict.

    Updated only from the event loop thread (the edge middleware) and read
    there too (``/metrics`` is an ``async`` endpoint), so no locks are needed;
    one dict lookup per request instead of prometheus-client's locked children.
    """

    def __init__(self) -> None:
        #: (method, route, status) -> [per-bucket counts..., +Inf count, sum of seconds]
        self.series: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        key = (method, route, status)
        h = self.series.get(key)
        if h is None:
            h = self.series[key] = [0.0] * (len(DURATION_BUCKETS) + 2)
        h[bisect_left(DURATION_BUCKETS, seconds)] += 1
        h[-1] += seconds

    def families(self) -> list[Metric]:
        """The current values as metric families: requests by status, latency by route."""
        requests = CounterMetricFamily(
            "imi_http_requests",
            "HTTP requests by method, route template and status.",
            labels=["method", "route", "status"],
        )
        per_route: dict[tuple[str, str], list[float]] = {}
        for (method, route, status), h in sorted(self.series.items()):
            requests.add_metric([method, route, str(status)], sum(h[:-1]))
            total = per_route.setdefault((method, route), [0.0] * len(h))
            for i, value in enumerate(h):
                total[i] += value
        latency = HistogramMetricFamily(
            "imi_http_request_duration_seconds",
            "Time from request start to the end of the response body, by method and route template.",
            labels=["method", "route"],
        )
        for (method, route), h in per_route.items():
            cumulative = 0.0
            buckets: list[tuple[str, float]] = []
            for bound, in_bucket in zip(DURATION_BUCKETS, h, strict=False):
                cumulative += in_bucket
                buckets.append((repr(bound), cumulative))
            cumulative += h[len(DURATION_BUCKETS)]
            buckets.append(("+Inf", cumulative))
            latency.add_metric([method, route], buckets=buckets, sum_value=h[-1])
        return [requests, latency]


class _Families:
    """A one-shot collector over already computed families (for ``generate_latest``)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def collect_scrape_time(engine: Engine) -> list[Metric]:
    """Every registered collector's families plus the process collectors (blocking: run in a thread)."""
    families: list[Metric] = []
    for name, fn in list(_collectors.items()):
        try:
            families.extend(fn(engine))
        except Exception as exc:  # noqa: BLE001 - one failing collector must not hide the others
            log.warning("metrics collector %s failed: %s", name, exc.__class__.__name__)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR):
        families.extend(collector.collect())
    return families


def exposition(families: list[Metric]) -> bytes:
    """``families`` in the Prometheus text exposition format 0.0.4."""
    return generate_latest(_Families(families))  # type: ignore[arg-type]
