"""Fixtures for the rules service's tests: a database per test module (the
catalogue in force is per database, and modules enact their own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rules_testkit import fresh_database


@pytest.fixture(scope="module")
def rules_database_url(database_url: str) -> Iterator[str]:
    with fresh_database(database_url) as url:
        yield url
