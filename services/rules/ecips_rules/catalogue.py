"""The joint punishment catalogue: rules as versioned data (``catalogue/rules.yaml``),
validated and compiled once when the service starts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import cel
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ecips_common.contracts import EnterpriseChanged, MeasureRef
from ecips_rules.expressions import ExpressionError, compile_condition, evaluate
from ecips_rules.variables import DATE_FIELDS, evaluation_context, sample_enterprises

Kind = Literal["punishment", "incentive"]


class CatalogueError(RuntimeError):
    """The catalogue is invalid; the message names the rule and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Scenario(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z_]{1,49}$")
    title: str


class Department(_Strict):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9-]{1,39}$")
    name: str


class Measure(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{1,79}$")
    title: str
    scenarios: tuple[str, ...] = Field(min_length=1)
    department: str
    legal_basis: str = Field(min_length=1)

    def ref(self) -> MeasureRef:
        return MeasureRef(
            measure=self.key,
            title=self.title,
            scenarios=list(self.scenarios),
            department=self.department,
            legal_basis=self.legal_basis,
        )


class Duration(_Strict):
    """``while_condition``: lasts while the condition holds; ``fixed``: lasts
    ``days`` days from its start, whatever happens to the condition."""

    type: Literal["while_condition", "fixed"]
    days: int | None = Field(default=None, ge=1, le=36500)

    @model_validator(mode="after")
    def _days_only_when_fixed(self) -> Duration:
        if (self.type == "fixed") != (self.days is not None):
            raise ValueError("days is required for a fixed duration and only for it")
        return self


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{1,79}$")
    version: int = Field(ge=1)
    title: str
    kind: Kind
    condition: str = Field(min_length=1)
    since_from: str | None = None
    duration: Duration
    measures: tuple[Measure, ...] = Field(min_length=1)
    legal_basis: str = Field(min_length=1)

    def measure_refs(self) -> list[MeasureRef]:
        return [m.ref() for m in self.measures]


class CatalogueFile(_Strict):
    version: str = Field(min_length=1)
    scenarios: tuple[Scenario, ...] = Field(min_length=1)
    departments: tuple[Department, ...] = Field(min_length=1)
    rules: tuple[dict[str, Any], ...]
    # YAML anchors for repeated text (legal bases); not read otherwise.
    definitions: dict[str, Any] | None = None


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    program: cel.Program

    def holds(self, enterprise: EnterpriseChanged, today: date) -> bool:
        return evaluate(self.program, evaluation_context(enterprise, today))


class Catalogue:
    def __init__(
        self,
        version: str,
        scenarios: tuple[Scenario, ...],
        departments: tuple[Department, ...],
        rules: list[CompiledRule],
    ) -> None:
        self.version = version
        self.scenarios = {s.key: s for s in scenarios}
        self.departments = {d.code: d for d in departments}
        self.rules = {r.rule.id: r for r in rules}

    def knows_scenario(self, scenario: str) -> bool:
        return scenario in self.scenarios


def load_catalogue(path: Path) -> Catalogue:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise CatalogueError(f"cannot read the rule catalogue {path}: {exc}") from exc
    return parse_catalogue(text, source=str(path))


def parse_catalogue(text: str, *, source: str = "rules.yaml") -> Catalogue:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{source} is not valid YAML: {exc}") from exc
    try:
        document = CatalogueFile.model_validate(raw)
    except ValidationError as exc:
        raise CatalogueError(f"{source} is invalid: {_errors(exc)}") from exc
    _unique(source, "scenario", [s.key for s in document.scenarios])
    _unique(source, "department", [d.code for d in document.departments])
    scenarios = {s.key for s in document.scenarios}
    departments = {d.code for d in document.departments}
    compiled: list[CompiledRule] = []
    seen: set[str] = set()
    for index, raw_rule in enumerate(document.rules):
        name = raw_rule.get("id") if isinstance(raw_rule.get("id"), str) else f"#{index + 1}"
        try:
            rule = Rule.model_validate(raw_rule)
        except ValidationError as exc:
            raise CatalogueError(f"rule {name!r} is invalid: {_errors(exc)}") from exc
        if rule.id in seen:
            raise CatalogueError(f"rule {rule.id!r} is defined twice")
        seen.add(rule.id)
        compiled.append(_compile_rule(rule, scenarios, departments))
    return Catalogue(document.version, document.scenarios, document.departments, compiled)


def _compile_rule(rule: Rule, scenarios: set[str], departments: set[str]) -> CompiledRule:
    def fail(problem: str) -> CatalogueError:
        return CatalogueError(f"rule {rule.id!r}: {problem}")

    if rule.since_from is not None and rule.since_from not in DATE_FIELDS:
        raise fail(f"since_from {rule.since_from!r} is not one of {sorted(DATE_FIELDS)}")
    keys = [m.key for m in rule.measures]
    if len(set(keys)) != len(keys):
        raise fail("measure keys must be unique within a rule")
    for measure in rule.measures:
        unknown = [s for s in measure.scenarios if s not in scenarios]
        if unknown:
            raise fail(f"measure {measure.key!r} names unknown scenarios {unknown}")
        if measure.department not in departments:
            raise fail(f"measure {measure.key!r} names unknown department {measure.department!r}")
    try:
        compiled = CompiledRule(rule, compile_condition(rule.condition))
    except ExpressionError as exc:
        raise fail(f"condition {rule.condition!r}: {exc}") from exc
    for description, sample in sample_enterprises():
        try:
            compiled.holds(sample, date(2024, 6, 30))
        except ExpressionError as exc:
            # Guard optional fields: `enterprise.x != null && ...`.
            raise fail(f"condition {rule.condition!r} on {description}: {exc}") from exc
    return compiled


def _unique(source: str, what: str, keys: list[str]) -> None:
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise CatalogueError(f"{source}: {what} defined twice: {', '.join(duplicates)}")


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}" for e in exc.errors()
    )
