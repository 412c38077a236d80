"""Fixtures of the reliability suite: one tiny workspace with an exported generator, built once."""

from __future__ import annotations

import pytest

from tests.reliability.common import copy_workspace, export_workspace


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """A workspace with every export input and a real export (read-only: copy it with ``workspace``)."""
    return export_workspace(tmp_path_factory.mktemp("exported"))


@pytest.fixture
def workspace(exported, tmp_path):
    """A private copy of the exported workspace."""
    return copy_workspace(exported, tmp_path / "ws")
