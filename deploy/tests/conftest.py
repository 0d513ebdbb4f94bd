"""Fixtures for the deployment tests: the checker module and the rendered overlays."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

DEPLOY = Path(__file__).resolve().parent.parent


def _load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_check", DEPLOY / "check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["deploy_check"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


CHECK = _load_checker()


@pytest.fixture(scope="session")
def check() -> ModuleType:
    return CHECK


@pytest.fixture(scope="session")
def kubectl() -> str:
    return str(CHECK.find_kubectl())


@pytest.fixture(scope="session")
def validators() -> list[Any]:
    return [CHECK.SchemaValidator(v) for v in CHECK.DEFAULT_KUBERNETES_VERSIONS]


@pytest.fixture(scope="session")
def rendered(kubectl: str) -> dict[str, list[dict[str, Any]]]:
    """base, dev and prod, rendered once for the session."""
    return {
        path.name if path.name != "base" else "base": CHECK.render(path, kubectl)
        for path in CHECK.DEFAULT_KUSTOMIZATIONS
    }
