from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ecips_common.settings import ServiceSettings


class CoordinationSettings(ServiceSettings):
    """Environment variables start with ``ECIPS_COORDINATION_``."""

    service_name: ClassVar[str] = "coordination"
    model_config = SettingsConfigDict(env_prefix="ECIPS_COORDINATION_", extra="ignore", frozen=True)

    # Deadlines in working days, counted from the day after the task opened.
    claim_due_working_days: int = Field(default=3, ge=0)
    feedback_due_working_days: int = Field(default=10, ge=0)
    tasks_page_max: int = 500

    # Data files (defaults: the ones shipped in the package; the department
    # catalogue is ingest's, found in the installed ecips-ingest package).
    approvals_file: Path | None = None
    calendar_file: Path | None = None
    departments_file: Path | None = None

    # Webhooks.
    webhook_allow_private_targets: bool = False
    webhook_retry_base_seconds: float = Field(default=2.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_max_attempts: int = Field(default=10, ge=1)
    webhook_poll_interval_seconds: float = Field(default=0.5, gt=0)
    webhook_batch_size: int = Field(default=50, ge=1, le=1000)

    # The public notice may be cached this long by browsers and proxies.
    notice_cache_max_age_seconds: int = Field(default=60, ge=0)

    # Origins of the department workbench (ingest's /workbench), comma-separated: a
    # browser there may call the authenticated API (claim, feedback: POST with a bearer
    # token). Empty: no such origin; other origins keep the public CORS policy.
    workbench_origins: str = ""

    def workbench_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.workbench_origins.split(",") if o.strip()]
