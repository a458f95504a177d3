"""Isolation inside the lane of failing endpoints: receivers that hang hold one slot each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import wait_for
from tests.webhooks.conftest import Receiver


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Endpoints stay enabled while failing (the default disable period), retried every 0.2 s.
    return {
        "in_process_worker": True,
        "webhook_retry_schedule": "0,0.2,0.2,0.2,0.2",
        "webhook_timeout_s": 2.0,
    }


def test_receivers_that_hang_do_not_hold_up_other_failing_endpoints(
    client: Any,
    manager: dict[str, str],
    receiver: Receiver,
    make_endpoint: Callable[..., Any],
    emit: Callable[..., Any],
) -> None:
    """Found in review: failing endpoints share a lane of slots; four hanging receivers with five
    due retries each filled it, so another failing endpoint's retry waited for their deadline."""
    dead = [receiver.url(f"dead{n}") for n in range(4)]
    for url in dead:
        receiver.hang(url)
        make_endpoint(url)
    flaky = receiver.url("flaky")
    make_endpoint(flaky)
    for _ in range(5):
        emit()
    # The dead endpoints' first attempts end at the 2 s deadline; their retries then hang in the
    # failing lane (due every 0.2 s), five deliveries each.
    wait_for(lambda: all(len(receiver.received(u)) >= 6 for u in dead), timeout=10)
    receiver.script(flaky, [500, 200])
    emit()
    reqs = wait_for(lambda: len(receiver.received(flaky)) >= 7 and receiver.received(flaky), timeout=10)
    failed, retried = reqs[5], reqs[6]  # the failure made it a failing endpoint: its retry is in that lane
    assert retried.at - failed.at < 1.5, "the retry waited behind hanging receivers"
