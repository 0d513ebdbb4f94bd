"""The rules service's API models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from ecips_common.identifiers import IdentifierError, validate_uscc

MAX_BATCH_CHECKS = 1000


def _uscc(value: str) -> str:
    try:
        return validate_uscc(value)
    except IdentifierError as exc:
        raise PydanticCustomError(exc.code, exc.message) from exc


Uscc = Annotated[str, AfterValidator(_uscc)]


class MeasureOut(BaseModel):
    key: str
    title: str
    scenarios: list[str]
    department: str
    legal_basis: str


class DurationOut(BaseModel):
    type: Literal["while_condition", "fixed"]
    days: int | None = None


class RuleOut(BaseModel):
    id: str
    version: int
    title: str
    kind: Literal["punishment", "incentive"]
    condition: str = Field(description="CEL over `enterprise` and `today`")
    since_from: str | None
    duration: DurationOut
    measures: list[MeasureOut]
    legal_basis: str


class ScenarioOut(BaseModel):
    key: str
    title: str


class RuleList(BaseModel):
    items: list[RuleOut]
    version: str
    scenarios: list[ScenarioOut]


class Restriction(BaseModel):
    rule_id: str
    measure: str
    title: str
    department: str
    legal_basis: str
    since: date
    until: date | None = Field(description="Last day the restriction applies; null: open-ended")


class CheckResult(BaseModel):
    uscc: str
    scenario: str
    allowed: bool
    known: bool = Field(
        description="false when the rules service has never seen this enterprise: "
        "allowed is then true because no public list information names it"
    )
    restrictions: list[Restriction]
    as_of: datetime
    catalogue_version: str


class BatchCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario: str
    usccs: list[Uscc] = Field(max_length=MAX_BATCH_CHECKS)


class BatchCheckResult(BaseModel):
    items: list[CheckResult]
