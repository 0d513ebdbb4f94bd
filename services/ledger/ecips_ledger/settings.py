from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from ecips_common.settings import ServiceSettings


class LedgerSettings(ServiceSettings):
    """Environment variables start with ``ECIPS_LEDGER_``."""

    service_name: ClassVar[str] = "ledger"
    model_config = SettingsConfigDict(env_prefix="ECIPS_LEDGER_", extra="ignore", frozen=True)

    audit_page_max: int = 500
