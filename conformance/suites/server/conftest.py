"""Address-book tests only judge a server of the address-book service."""

from __future__ import annotations

import pytest

from conformance.judging.session import ServerTarget


@pytest.fixture(autouse=True)
def _address_book_service(abp_target: ServerTarget) -> None:
    if abp_target.service != "abp":
        pytest.skip("an address-book test; the target runs the counter service")
