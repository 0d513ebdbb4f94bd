from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from ecips_common.contracts import LEDGER_TOPIC, PUNISHMENTS_TOPIC
from ecips_common.settings import ServiceSettings

CATALOGUE_DIR = Path(__file__).parent / "catalogue"


class PublicitySettings(ServiceSettings):
    """Environment variables start with ``ECIPS_PUBLICITY_``."""

    service_name: ClassVar[str] = "publicity"
    model_config = SettingsConfigDict(env_prefix="ECIPS_PUBLICITY_", extra="ignore", frozen=True)

    catalogue_dir: Path = CATALOGUE_DIR
    # Topic names are settings so tests (and staging) can isolate themselves.
    ledger_topic: str = LEDGER_TOPIC
    punishments_topic: str = PUNISHMENTS_TOPIC
