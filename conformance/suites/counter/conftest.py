"""Counter tests only judge a server of the counter service."""

from __future__ import annotations

import pytest

from conformance.judging.session import ServerTarget


@pytest.fixture(autouse=True)
def _counter_service(abp_target: ServerTarget) -> None:
    if abp_target.service != "counter":
        pytest.skip("a counter-service test; the target runs the address book (--service)")
