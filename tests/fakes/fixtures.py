"""pytest fixtures for the hosted-backend tests; load with ``pytest_plugins = ["tests.fakes.fixtures"]``.

One fake server per vendor runs for the whole session; the ``server`` fixture resets it before
each test, so tests stay independent while paying the uvicorn start-up once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes import FAKES, FakeServer
from tests.fakes.helpers import TEST_KEY, VENDORS


@pytest.fixture(scope="session")
def fake_servers() -> Iterator[dict[str, FakeServer]]:
    servers = {name: cls().start() for name, cls in FAKES.items()}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(params=VENDORS)
def vendor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(vendor: str, fake_servers: dict[str, FakeServer]) -> Iterator[FakeServer]:
    """The vendor's fake, reset; the hosted vendors demand ``TEST_KEY`` like the real APIs demand a key."""
    fake = fake_servers[vendor]
    fake.reset()
    fake.api_key = None if vendor == "tei" else TEST_KEY
    yield fake
    assert not fake.errors, "the fake server itself failed:\n" + "\n".join(fake.errors)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)
