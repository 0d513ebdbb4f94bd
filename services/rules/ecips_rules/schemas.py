"""The rules service's API models."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from ecips_common.identifiers import IdentifierError, validate_uscc

MAX_BATCH_CHECKS = 1000


def _uscc(value: str) -> str:
    try:
        return validate_uscc(value)
    except IdentifierError as exc:
        raise PydanticCustomError(exc.code, exc.message) from exc


Uscc = Annotated[str, AfterValidator(_uscc)]


# --- the catalogue -----------------------------------------------------------


class MeasureOut(BaseModel):
    key: str
    title: str
    scenarios: list[str]
    department: str
    legal_basis: str


class PeriodOut(BaseModel):
    years: int = 0
    months: int = 0
    days: int = 0


class DurationOut(BaseModel):
    type: Literal["while_condition", "fixed"]
    years: int | None = None
    months: int | None = None
    days: int | None = None


class RuleOut(BaseModel):
    id: str
    version: int
    title: str
    kind: Literal["punishment", "incentive"]
    condition: str = Field(description="CEL over `enterprise`")
    since_from: str | None
    delay: PeriodOut | None = Field(
        description="The rule applies from the day after this period, counted from the day "
        "after `since_from`, has run"
    )
    duration: DurationOut
    measures: list[MeasureOut]
    legal_basis: str


class ScenarioOut(BaseModel):
    key: str
    title: str
    kind: Literal["restriction", "incentive"]


class DepartmentOut(BaseModel):
    code: str
    name: str


class RuleList(BaseModel):
    items: list[RuleOut]
    version: str = Field(description="The catalogue version in force")
    scenarios: list[ScenarioOut]
    departments: list[DepartmentOut]


# --- credit checks ------------------------------------------------------------


class Restriction(BaseModel):
    rule_id: str
    rule_title: str | None
    measure: str
    title: str
    department: str
    department_name: str | None
    legal_basis: str
    since: date
    until: date | None = Field(description="Last day the measure applies; null: open-ended")


class Benefit(Restriction):
    """An incentive measure (守信联合激励) granting the scenario."""


class CheckResult(BaseModel):
    uscc: str
    scenario: str
    scenario_kind: Literal["restriction", "incentive"] = Field(
        description="restriction: allowed unless a punishment blocks it; incentive: allowed "
        "when an incentive grants it and no punishment blocks it"
    )
    allowed: bool
    known: bool = Field(
        description="false when the rules service has never seen this enterprise: "
        "allowed is then true for restrictions because no public list information names it"
    )
    restrictions: list[Restriction]
    benefits: list[Benefit]
    as_of: datetime
    catalogue_version: str


class BatchCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario: str
    usccs: list[Uscc] = Field(max_length=MAX_BATCH_CHECKS)


class BatchCheckResult(BaseModel):
    items: list[CheckResult]


# --- managing the catalogue (rules:admin) -------------------------------------


class CatalogueIn(BaseModel):
    """A whole catalogue, as in the shipped file (rules' ``version`` optional)."""

    model_config = ConfigDict(extra="forbid")

    scenarios: list[dict[str, Any]]
    departments: list[dict[str, Any]]
    rules: list[dict[str, Any]]


class RuleChanges(BaseModel):
    """Changes to the catalogue in force: rules added or replaced (by id),
    rules withdrawn, scenarios and departments added or replaced."""

    model_config = ConfigDict(extra="forbid")

    upsert: list[dict[str, Any]] = Field(default_factory=list)
    withdraw: list[str] = Field(default_factory=list)
    scenarios: list[dict[str, Any]] = Field(default_factory=list)
    departments: list[dict[str, Any]] = Field(default_factory=list)


class NewCatalogueVersion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=2000, description="Why this version")
    catalogue: CatalogueIn | None = None
    changes: RuleChanges | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> NewCatalogueVersion:
        if (self.catalogue is None) == (self.changes is None):
            raise ValueError("give either a whole catalogue or changes, not both")
        return self


class RuleDifference(BaseModel):
    rule_id: str
    change: Literal["added", "revised", "withdrawn", "unchanged"]
    from_version: int | None
    to_version: int | None


class JobOut(BaseModel):
    job_id: uuid.UUID
    kind: Literal["dry_run", "enactment"]
    catalogue_version: str
    status: Literal["running", "done", "failed"]
    as_of: date
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    evaluated: int = Field(description="Enterprises evaluated so far")
    summary: dict[str, Any] = Field(
        description="Enterprises newly restricted and released (and incentives granted and "
        "withdrawn) with examples, and the differences per rule"
    )
    dry_run_job_id: uuid.UUID | None = None
    matches_dry_run: bool | None = Field(
        default=None,
        description="Enactments: whether the differences made equal those of the dry run",
    )
    error: str | None = None


class VersionOut(BaseModel):
    number: int
    catalogue_version: str
    status: Literal["draft", "enacted", "superseded"]
    note: str
    based_on: int | None
    created_at: datetime
    created_by: str
    enacted_at: datetime | None
    enacted_by: str | None
    differences: list[RuleDifference] = Field(
        description="Against the version it was based on (every rule when none)"
    )


class VersionDetail(VersionOut):
    document: dict[str, Any]
    jobs: list[JobOut]


class VersionList(BaseModel):
    items: list[VersionOut]
    in_force: int


class JobChangeOut(BaseModel):
    position: int
    uscc: str
    rule_id: str
    rule_version: int
    kind: str
    action: Literal["triggered", "lifted"]
    reason: str | None
    since: date | None
    until: date | None


class JobChangePage(BaseModel):
    items: list[JobChangeOut]
    next_cursor: int
