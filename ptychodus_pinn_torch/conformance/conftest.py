"""pytest wiring of the conformance suite: the ``spec`` marker and the backend under test."""

from __future__ import annotations

import pytest

DEFAULT_BACKEND = "ptychodus-pinn-torch"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance")
    try:
        group.addoption(
            "--backend",
            default=DEFAULT_BACKEND,
            help="entry point name (group ptychodus_pinn_torch.plugins) of the plugin whose "
            "reconstructor library the HOST rules test",
        )
    except ValueError:  # already added (the suite is collected twice in one session)
        pass


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "spec(*rule_ids): the specs/ rules this test proves")


@pytest.fixture(scope="session")
def backend_name(request: pytest.FixtureRequest) -> str:
    """Entry point name of the plugin under test."""
    return str(request.config.getoption("--backend"))
