from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from ecips_common.settings import ServiceSettings

CATALOGUE_FILE = Path(__file__).parent / "catalogue" / "rules.yaml"


class RulesSettings(ServiceSettings):
    """Environment variables start with ``ECIPS_RULES_``."""

    service_name: ClassVar[str] = "rules"
    model_config = SettingsConfigDict(env_prefix="ECIPS_RULES_", extra="ignore", frozen=True)

    catalogue_file: Path = CATALOGUE_FILE
