"""``/metrics`` and the JSON access log (SQLite only: neither depends on the backend,
except the event-sequence gauge, which reads a table every backend has)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.core import GaugeMetricFamily

from service.core import logs, metrics
from service.events.service import emit


@pytest.fixture
def db_url(sqlite_db_url: str) -> str:
    return sqlite_db_url


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a text exposition, or None."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        metric, _, value = line.rpartition(" ")
        if metric == name and not labels:
            return float(value)
        match = re.fullmatch(rf"{re.escape(name)}\{{(.*)\}}", metric)
        if match:
            found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1)))
            if found == labels:
                return float(value)
    return None


def test_requests_are_counted_by_route_template(client: TestClient, session_factory: Any) -> None:
    with session_factory() as s:
        emit(s, "school.listed", {"id": "sch_1"})
        emit(s, "school.listed", {"id": "sch_2"})
    for _ in range(2):
        assert client.get("/v1/events?after=1").status_code == 200
    assert client.head("/v1/events").status_code == 200
    assert client.get("/v1/standards/no-such-document/current").status_code == 404
    assert client.get("/wp-admin/setup.php").status_code == 404
    assert client.delete("/v1/events").status_code == 405
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = r.text
    assert sample(text, "imi_http_requests_total", method="GET", route="/v1/events", status="200") == 2
    assert sample(text, "imi_http_requests_total", method="HEAD", route="/v1/events", status="200") == 1
    assert (
        sample(
            text,
            "imi_http_requests_total",
            method="GET",
            route="/v1/standards/{slug}/current",
            status="404",
        )
        == 1
    )
    assert sample(text, "imi_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert sample(text, "imi_http_requests_total", method="DELETE", route="/v1/events", status="405") == 1
    # Raw paths never become labels.
    assert "no-such-document" not in text and "wp-admin" not in text
    count = sample(text, "imi_http_request_duration_seconds_count", method="GET", route="/v1/events")
    assert count == 2
    inf = sample(
        text, "imi_http_request_duration_seconds_bucket", method="GET", route="/v1/events", le="+Inf"
    )
    assert inf == 2
    assert sample(text, "imi_events_last_sequence") == 2
    assert sample(text, "imi_events_pruned_through") == 0
    assert sample(text, "process_cpu_seconds_total") is not None


def test_registered_collectors_are_scraped_and_a_failing_one_is_skipped(client: TestClient) -> None:
    def deliveries(engine: Any) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("imi_test_deliveries_due", "Due deliveries.", value=7)

    def broken(engine: Any) -> Iterator[GaugeMetricFamily]:
        raise RuntimeError("query failed")

    metrics.register_collector("test.deliveries", deliveries)
    metrics.register_collector("test.broken", broken)
    try:
        r = client.get("/metrics")
    finally:
        metrics._collectors.pop("test.deliveries")
        metrics._collectors.pop("test.broken")
    assert r.status_code == 200
    assert sample(r.text, "imi_test_deliveries_due") == 7
    assert sample(r.text, "imi_events_last_sequence") == 0


SECRETS = ("s3cr3t-bearer-token", "hunter2-client-secret", "contact@school.example", "+41 44 555 01 02")


def _requests_with_secrets(client: TestClient) -> str:
    rid = "trace-abc-123"
    client.get(
        "/v1/events?token=s3cr3t-bearer-token&email=contact@school.example",
        headers={"Authorization": "Bearer s3cr3t-bearer-token", "X-Request-ID": rid},
    )
    client.post(
        "/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "cli_x",
            "client_secret": "hunter2-client-secret",
        },
    )
    client.post(
        "/v1/schools",
        json={
            "name": "Zen",
            "country": "CH",
            "contact": {"email": "contact@school.example", "phone": "+41 44 555 01 02"},
        },
        headers={"Authorization": "Bearer s3cr3t-bearer-token"},
    )
    return rid


def test_one_json_line_per_request_without_secrets(client: TestClient) -> None:
    stream = io.StringIO()
    logs.configure_logging("INFO", stream=stream)
    try:
        rid = _requests_with_secrets(client)
        logs.flush_logs()
    finally:
        logs.shutdown_logging()
    output = stream.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    access = [line for line in lines if line["logger"] == "service.access"]
    assert len(access) == 3
    first = access[0]
    assert first["method"] == "GET"
    assert first["route"] == "/v1/events"
    assert first["path"] == "/v1/events"  # the query string is never logged
    assert first["status"] == 200
    assert first["request_id"] == rid
    assert first["client"] == "testclient"
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert [a["route"] for a in access[1:]] == ["/v1/oauth/token", "/v1/schools"]
    for secret in SECRETS:
        assert secret not in output
    assert "authorization" not in output.lower()


def test_access_lines_reach_standard_logging_before_configuration(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        _requests_with_secrets(client)
    records = [r for r in caplog.records if r.name == "service.access"]
    assert len(records) == 3
    line = json.loads(records[0].getMessage())
    assert line["request_id"] == "trace-abc-123"
    # The service's own records (the test client's httpx logs its URLs on its side).
    everything = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("service"))
    for secret in SECRETS:
        assert secret not in everything


def test_log_records_are_json_with_the_request_id() -> None:
    stream = io.StringIO()
    logs.configure_logging("INFO", stream=stream)
    token = logs.request_id_var.set("rid-1")
    try:
        logging.getLogger("service.test").warning("disk %s is full", "/var", extra={"imi": {"free": 0}})
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("service.test").exception("failed")
        logs.flush_logs()
    finally:
        logs.request_id_var.reset(token)
        logs.shutdown_logging()
    # uvicorn's own access line (with query strings) is replaced by ours.
    assert logging.getLogger("uvicorn.access").disabled is True
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "disk /var is full"
    assert first["level"] == "WARNING"
    assert first["logger"] == "service.test"
    assert first["request_id"] == "rid-1"
    assert first["free"] == 0
    assert second["level"] == "ERROR"
    assert "ValueError: boom" in second["exc"]


def test_webhook_delivery_gauges(client: TestClient, auth: Any, session_factory: Any) -> None:
    # The README promised these; no collector was registered, so /metrics had none of them.
    manager = auth("webhooks:manage")
    for n in range(2):
        r = client.post("/v1/webhooks/endpoints", json={"url": f"http://127.0.0.1:9/m{n}"}, headers=manager)
        assert r.status_code == 201, r.text
    with session_factory() as session:
        emit(session, "school.listed", {"school": {"id": "sch_x"}})  # no worker runs here
    text = client.get("/metrics").text
    assert sample(text, "imi_webhook_deliveries", status="pending") == 2
    assert sample(text, "imi_webhook_deliveries", status="succeeded") == 0
    assert sample(text, "imi_webhook_deliveries", status="failed") == 0
    assert sample(text, "imi_webhook_deliveries_due") == 2
    assert sample(text, "imi_webhook_deliveries_in_flight") == 0
    assert 0 <= sample(text, "imi_webhook_oldest_due_age_seconds") < 60  # due since the emit
