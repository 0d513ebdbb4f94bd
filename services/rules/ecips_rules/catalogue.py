"""The joint punishment catalogue: rules as versioned data.

The shipped ``catalogue/rules.yaml`` is the first version; later versions are
written through the API and kept in the database. Either way a document is
validated and its conditions compiled once, and every problem is reported
with the field it concerns and a message naming the rule.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import cel
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ecips_common.contracts import MeasureRef
from ecips_rules.expressions import ExpressionError, compile_condition, evaluate
from ecips_rules.variables import (
    DATE_FIELDS,
    TIME_DERIVED,
    Shape,
    enterprise_variables,
    project,
    projection_shape,
    sample_enterprises,
    value_at,
)
from ecips_rules.variables import (
    Path as FieldPath,
)

Kind = Literal["punishment", "incentive"]
ScenarioKind = Literal["restriction", "incentive"]


@dataclass(frozen=True, slots=True)
class CatalogueProblem:
    field: str
    code: str
    message: str


class CatalogueError(RuntimeError):
    """The catalogue is invalid; each problem names its field and rule."""

    def __init__(self, problems: Sequence[CatalogueProblem], *, source: str | None = None) -> None:
        self.problems = list(problems)
        text = "; ".join(p.message for p in self.problems)
        super().__init__(f"{source}: {text}" if source else text)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Scenario(_Strict):
    """A decision a department asks about. ``restriction``: may the enterprise
    take part (yes unless a punishment blocks it); ``incentive``: does it get
    the benefit (yes when an incentive grants it and no punishment blocks it)."""

    key: str = Field(pattern=r"^[a-z][a-z_]{1,49}$")
    title: str = Field(min_length=1)
    kind: ScenarioKind = "restriction"


class Department(_Strict):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9-]{1,39}$")
    name: str = Field(min_length=1)


class Measure(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{1,79}$")
    title: str = Field(min_length=1)
    # The check scenarios it decides; empty for an action the department
    # carries out (such as moving the enterprise to another list).
    scenarios: tuple[str, ...] = ()
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


class Period(_Strict):
    years: int = Field(default=0, ge=0, le=100)
    months: int = Field(default=0, ge=0, le=1200)
    days: int = Field(default=0, ge=0, le=36500)

    @model_validator(mode="after")
    def _not_empty(self) -> Period:
        if not (self.years or self.months or self.days):
            raise ValueError("a period needs years, months or days")
        return self

    def after(self, start: date) -> date:
        """The corresponding day ``years``/``months`` later (the month's last
        day when it has none, 民法典 第二百零三条), then ``days`` more."""
        month_index = start.month - 1 + self.months + 12 * self.years
        year, month = start.year + month_index // 12, month_index % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return date(year, month, day) + timedelta(days=self.days)


class Duration(_Strict):
    """``while_condition``: lasts while the condition holds; ``fixed``: lasts
    the period from its first day, whatever happens to the condition."""

    type: Literal["while_condition", "fixed"]
    years: int | None = Field(default=None, ge=0, le=100)
    months: int | None = Field(default=None, ge=0, le=1200)
    days: int | None = Field(default=None, ge=0, le=36500)

    @model_validator(mode="after")
    def _period_only_when_fixed(self) -> Duration:
        given = any(v for v in (self.years, self.months, self.days))
        if self.type == "fixed" and not given:
            raise ValueError("a fixed duration needs days, months or years")
        if self.type == "while_condition" and any(
            v is not None for v in (self.years, self.months, self.days)
        ):
            raise ValueError("days, months and years are only for a fixed duration")
        return self

    def last_day(self, since: date) -> date | None:
        if self.type != "fixed":
            return None
        period = Period(years=self.years or 0, months=self.months or 0, days=self.days or 0)
        return period.after(since) - timedelta(days=1)


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{1,79}$")
    version: int = Field(ge=1)
    title: str = Field(min_length=1)
    kind: Kind
    condition: str = Field(min_length=1, max_length=4000)
    # The date field whose value starts the rule; absent: the day the
    # condition is first seen to hold.
    since_from: str | None = None
    # The rule applies from the day after this period, counted from the day
    # after since_from, has run ("listed for 3 years").
    delay: Period | None = None
    duration: Duration
    measures: tuple[Measure, ...] = Field(min_length=1)
    legal_basis: str = Field(min_length=1)

    def measure_refs(self) -> list[MeasureRef]:
        return [m.ref() for m in self.measures]

    def content(self) -> dict[str, Any]:
        """The rule without its version, to tell whether its meaning changed."""
        return self.model_dump(mode="json", exclude={"version"})


class CatalogueDocument(_Strict):
    # The shipped file's own number (the seed is 1); the database numbers
    # later versions.
    version: int | None = None
    scenarios: tuple[Scenario, ...] = Field(min_length=1)
    departments: tuple[Department, ...] = Field(min_length=1)
    rules: tuple[dict[str, Any], ...]
    # YAML anchors for repeated text (legal bases); not read otherwise.
    definitions: dict[str, Any] | None = None


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    program: cel.Program
    # Field paths (below ``enterprise``) the rule depends on, dotted: what
    # the condition reads, and the since_from field.
    inputs: frozenset[str]
    # What the condition reads (all the CEL context needs).
    paths: frozenset[FieldPath]

    def holds_in(self, context: cel.Context) -> bool:
        return evaluate(self.program, context)

    def holds(self, state: Mapping[str, Any], today: date) -> bool:
        """Evaluate on one snapshot (convenient, not fast)."""
        variables = enterprise_variables(state, today)
        context = cel.Context()
        context.add_variable("enterprise", variables)
        return self.holds_in(context)


@dataclass
class Catalogue:
    number: int
    scenarios: dict[str, Scenario]
    departments: dict[str, Department]
    rules: dict[str, CompiledRule]
    shape: Shape = field(default_factory=dict)
    time_derived: bool = False
    leaves: tuple[FieldPath, ...] = ()
    # Condition answers by the values the conditions read (see answers()).
    _answers: dict[Any, dict[str, bool | ExpressionError]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        paths: set[FieldPath] = set()
        for compiled in self.rules.values():
            paths.update(compiled.paths)
        self.shape = projection_shape(paths)
        self.leaves = _leaves(self.shape)
        self.time_derived = any(compiled.inputs & TIME_DERIVED for compiled in self.rules.values())

    @property
    def version(self) -> str:
        """How events and answers name this catalogue version."""
        return str(self.number)

    def knows_scenario(self, scenario: str) -> bool:
        return scenario in self.scenarios

    def context(self, variables: Mapping[str, Any]) -> cel.Context:
        context = cel.Context()
        context.add_variable("enterprise", project(variables, self.shape))
        return context

    def answers(self, variables: Mapping[str, Any]) -> dict[str, bool | ExpressionError]:
        """Every rule's condition on these variables (an error where it failed).

        A condition is a pure function of the fields it reads, and enterprises
        share those values far more often than not (most are on no list), so
        answers are remembered by those values: handing a value to the CEL
        engine costs far more than evaluating a condition.
        """
        key = tuple([_hashable(value_at(variables, path)) for path in self.leaves])
        found = self._answers.get(key)
        if found is not None:
            return found
        context = cel.Context()
        context.add_variable("enterprise", project(variables, self.shape))
        found = {}
        for rule_id, compiled in self.rules.items():
            try:
                found[rule_id] = compiled.holds_in(context)
            except ExpressionError as exc:
                found[rule_id] = exc
        if len(self._answers) >= _ANSWERS_KEPT:
            self._answers.clear()
        self._answers[key] = found
        return found

    def document(self) -> dict[str, Any]:
        """The catalogue as stored and served (JSON)."""
        return {
            "scenarios": [s.model_dump(mode="json") for s in self.scenarios.values()],
            "departments": [d.model_dump(mode="json") for d in self.departments.values()],
            "rules": [
                c.rule.model_dump(mode="json", exclude_none=True) for c in self.rules.values()
            ],
        }


_ANSWERS_KEPT = 50_000


def _hashable(value: Any) -> Any:
    if type(value) is dict:
        return tuple((k, _hashable(v)) for k, v in value.items())
    if type(value) is list:
        return tuple(_hashable(v) for v in value)
    return value


def _leaves(shape: Shape, prefix: FieldPath = ()) -> tuple[FieldPath, ...]:
    out: list[FieldPath] = []
    for key, sub in shape.items():
        if isinstance(sub, dict):
            out += _leaves(sub, (*prefix, key))
        else:
            out.append((*prefix, key))
    return tuple(out)


def load_catalogue(path: Path, *, number: int = 1) -> Catalogue:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise CatalogueError(
            [CatalogueProblem("document", "unreadable", f"cannot read {path}: {exc}")]
        ) from exc
    return parse_catalogue(text, number=number, source=str(path))


def parse_catalogue(
    text: str | Mapping[str, Any], *, number: int = 1, source: str = "rules.yaml"
) -> Catalogue:
    """Validate and compile a catalogue (YAML text or an already parsed document)."""
    if isinstance(text, str):
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CatalogueError(
                [CatalogueProblem("document", "invalid_yaml", f"not valid YAML: {exc}")],
                source=source,
            ) from exc
    else:
        raw = dict(text)
    try:
        document = CatalogueDocument.model_validate(raw)
    except ValidationError as exc:
        raise CatalogueError(_problems(exc, prefix="", rule=None), source=source) from exc
    problems: list[CatalogueProblem] = []
    problems += _unique("scenarios", "scenario", [s.key for s in document.scenarios])
    problems += _unique("departments", "department", [d.code for d in document.departments])
    scenarios = {s.key for s in document.scenarios}
    departments = {d.code for d in document.departments}
    compiled: list[CompiledRule] = []
    seen: set[str] = set()
    for index, raw_rule in enumerate(document.rules):
        where = f"rules[{index}]"
        name = raw_rule.get("id") if isinstance(raw_rule.get("id"), str) else f"#{index + 1}"
        try:
            rule = Rule.model_validate(raw_rule)
        except ValidationError as exc:
            problems += _problems(exc, prefix=where, rule=str(name))
            continue
        if rule.id in seen:
            problems.append(
                CatalogueProblem(
                    f"{where}.id", "duplicate_rule", f"rule {rule.id!r} is defined twice"
                )
            )
            continue
        seen.add(rule.id)
        try:
            compiled.append(_compile_rule(rule, where, scenarios, departments))
        except CatalogueError as exc:
            problems += exc.problems
    if problems:
        raise CatalogueError(problems, source=source)
    return Catalogue(
        number,
        {s.key: s for s in document.scenarios},
        {d.code: d for d in document.departments},
        {c.rule.id: c for c in compiled},
    )


def _compile_rule(
    rule: Rule, where: str, scenarios: set[str], departments: set[str]
) -> CompiledRule:
    problems: list[CatalogueProblem] = []

    def fail(at: str, code: str, problem: str) -> None:
        problems.append(CatalogueProblem(f"{where}.{at}", code, f"rule {rule.id!r}: {problem}"))

    if rule.since_from is not None and rule.since_from not in DATE_FIELDS:
        fail(
            "since_from",
            "unknown_field",
            f"since_from {rule.since_from!r} is not one of {sorted(DATE_FIELDS)}",
        )
    keys = [m.key for m in rule.measures]
    if len(set(keys)) != len(keys):
        fail("measures", "duplicate_measure", "measure keys must be unique within a rule")
    for i, measure in enumerate(rule.measures):
        unknown = [s for s in measure.scenarios if s not in scenarios]
        if unknown:
            fail(
                f"measures[{i}].scenarios",
                "unknown_scenario",
                f"measure {measure.key!r} names unknown scenarios {unknown}",
            )
        if measure.department not in departments:
            fail(
                f"measures[{i}].department",
                "unknown_department",
                f"measure {measure.key!r} names unknown department {measure.department!r}",
            )
    try:
        program, paths = compile_condition(rule.condition)
    except ExpressionError as exc:
        fail("condition", "invalid_condition", f"condition {rule.condition!r}: {exc}")
        raise CatalogueError(problems) from exc
    if problems:
        raise CatalogueError(problems)
    inputs = {".".join(p) for p in paths if p}
    if any(not p for p in paths):
        inputs.add("")  # the whole enterprise map
    if rule.since_from:
        inputs.add(rule.since_from)
    compiled = CompiledRule(rule, program, frozenset(inputs), paths)
    for description, sample in sample_enterprises():
        try:
            compiled.holds(sample, date(2024, 6, 30))
        except ExpressionError as exc:
            # Guard optional fields: `enterprise.x != null && ...`.
            fail(
                "condition",
                "invalid_condition",
                f"condition {rule.condition!r} on {description}: {exc} "
                "(optional fields are null when unknown: guard them)",
            )
            raise CatalogueError(problems) from exc
    return compiled


def _unique(where: str, what: str, keys: list[str]) -> list[CatalogueProblem]:
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if not duplicates:
        return []
    return [
        CatalogueProblem(
            where, f"duplicate_{what}", f"{what} defined twice: {', '.join(duplicates)}"
        )
    ]


def _problems(exc: ValidationError, *, prefix: str, rule: str | None) -> list[CatalogueProblem]:
    out: list[CatalogueProblem] = []
    for error in exc.errors():
        location = prefix
        for part in error["loc"]:
            if isinstance(part, int):
                location += f"[{part}]"
            else:
                location += f".{part}" if location else str(part)
        location = location or "document"
        code = {"missing": "required", "extra_forbidden": "unknown_field"}.get(
            error["type"], error["type"]
        )
        shown = location.removeprefix(prefix).lstrip(".") or location
        text = f"{shown}: {error['msg']}"
        out.append(
            CatalogueProblem(location, code, f"rule {rule!r} is invalid: {text}" if rule else text)
        )
    return out
