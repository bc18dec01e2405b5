"""pytest wiring of the conformance suite: the ``spec`` marker and the backend under test."""

from __future__ import annotations

import os

import pytest

from ptychodus_pinn_torch.conformance import BACKEND_ENV, DEFAULT_BACKEND


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
    """Entry point name of the plugin under test: ``--backend``, else ``$PINN_TORCH_BACKEND``,
    else ours."""
    option = request.config.getoption("--backend", default=None)
    if option and option != DEFAULT_BACKEND:
        return str(option)
    return os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND
