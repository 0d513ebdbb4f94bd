from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from ecips_common.settings import ServiceSettings


class CoordinationSettings(ServiceSettings):
    """Environment variables start with ``ECIPS_COORDINATION_``."""

    service_name: ClassVar[str] = "coordination"
    model_config = SettingsConfigDict(env_prefix="ECIPS_COORDINATION_", extra="ignore", frozen=True)

    # Deadlines in working days, counted from the day after the task opened.
    claim_due_working_days: int = 3
    feedback_due_working_days: int = 10
    tasks_page_max: int = 500
