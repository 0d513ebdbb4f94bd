"""The record-category, department and compliance catalogues: versioned data
files, validated when the service starts."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeVar

import jsonschema_rs
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ecips_common.identifiers import is_valid_registration_number, is_valid_uscc

Disclosure = Literal["public", "authorized", "government"]
DepartmentKind = Literal[
    "registration_authority",
    "credit_authority",
    "administrative",
    "district_government",
    "court",
    "procuratorate",
    "supervisor",
]
_M = TypeVar("_M", bound=BaseModel)

# The money value pattern in categories.yaml: errors against it get amount codes.
MONEY_PATTERN = "^[0-9]{1,15}(\\.[0-9]{1,6})?$"


class CatalogueError(RuntimeError):
    """The catalogue files are invalid; the message names the entry."""


class Department(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[A-Z][A-Z0-9-]{1,39}$")
    name: str
    kind: DepartmentKind
    notice_name: str | None = None
    expected_monthly: tuple[str, ...] = ()


class QualityRules(BaseModel):
    """Data-quality rules beyond the JSON Schema (数据质量校核规则)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    future_allowed: tuple[str, ...] = ()
    date_order: tuple[tuple[str, str], ...] = ()


class Category(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z_]{1,49}$")
    name: str
    description: str = ""
    disclosure: Disclosure
    publicity_period_days: int | None = Field(ge=1)
    legal_basis: str
    submitters: tuple[str, ...]
    occurred_on_field: str | None = None
    check_enterprise_name: bool = True
    quality: QualityRules = QualityRules()
    json_schema: dict[str, Any]

    @cached_property
    def properties(self) -> dict[str, Any]:
        props: dict[str, Any] = self.json_schema.get("properties", {})
        return props

    @cached_property
    def date_fields(self) -> tuple[str, ...]:
        return tuple(k for k, v in self.properties.items() if v.get("format") == "date")


class DeadlineRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    day_of_next_month: int = Field(ge=1, le=28)
    utc_offset_hours: int = Field(ge=-12, le=14)


class AccuracyRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_rejected_share: float = Field(ge=0, le=1)
    unmatched_counts_as_inaccurate: bool = True


class ComplianceRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    source: str
    deadline: DeadlineRule
    accuracy: AccuracyRule
    top_rejection_codes: int = Field(ge=1, le=50)


class Mistake(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str
    set: dict[str, Any] = Field(default_factory=dict)
    remove: tuple[str, ...] = ()
    errors: tuple[dict[str, str], ...]


class Example(BaseModel):
    """A realistic record of a category and its typical mistake."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    department: str
    record: dict[str, Any]
    mistake: Mistake

    def mistaken_record(self) -> dict[str, Any]:
        """The record with the mistake applied (a deep copy)."""
        record: dict[str, Any] = yaml.safe_load(yaml.safe_dump(self.record, allow_unicode=True))
        for path in self.mistake.remove:
            parent, leaf = _walk(record, path)
            parent.pop(leaf, None)
        for path, value in self.mistake.set.items():
            parent, leaf = _walk(record, path)
            parent[leaf] = value
        return record


def _walk(record: dict[str, Any], dotted: str) -> tuple[dict[str, Any], str]:
    *parents, leaf = dotted.split(".")
    node = record
    for part in parents:
        node = node.setdefault(part, {})
    return node, leaf


_IDENTIFIER_FORMATS = {
    "uscc": is_valid_uscc,
    "registration-number": is_valid_registration_number,
}


def format_checker() -> FormatChecker:
    """JSON Schema formats, plus the enterprise identifiers with their check characters."""
    checker = FormatChecker()
    checker.checks("uscc")(lambda v: not isinstance(v, str) or is_valid_uscc(v))
    checker.checks("registration-number")(
        lambda v: not isinstance(v, str) or is_valid_registration_number(v)
    )
    return checker


class Catalogue:
    """Categories, departments, compliance rules and examples, cross-checked."""

    def __init__(
        self,
        version: str,
        categories: list[Category],
        departments: list[Department],
        compliance: ComplianceRules,
        examples: dict[str, Example],
    ) -> None:
        self.version = version
        self.compliance = compliance
        self.departments: dict[str, Department] = {}
        for department in departments:
            if department.code in self.departments:
                raise CatalogueError(f"department {department.code!r} is defined twice")
            self.departments[department.code] = department
        self.categories: dict[str, Category] = {}
        self.validators: dict[str, Draft202012Validator] = {}
        # The compiled (Rust) validator answers "valid?" fast; the Python one then
        # explains an invalid record field by field.
        self.fast_validators: dict[str, Any] = {}
        self.submitters: dict[str, tuple[str, ...]] = {}
        checker = format_checker()
        for category in categories:
            if category.key in self.categories:
                raise CatalogueError(f"category {category.key!r} is defined twice")
            try:
                Draft202012Validator.check_schema(category.json_schema)
            except SchemaError as exc:
                raise CatalogueError(
                    f"category {category.key!r}: invalid JSON Schema: {exc.message}"
                ) from exc
            _check_category(category)
            self.categories[category.key] = category
            self.validators[category.key] = Draft202012Validator(
                category.json_schema, format_checker=checker
            )
            self.fast_validators[category.key] = jsonschema_rs.validator_for(
                category.json_schema, formats=_IDENTIFIER_FORMATS, validate_formats=True
            )
            self.submitters[category.key] = self._expand(category)
        for department in self.departments.values():
            for key in department.expected_monthly:
                if not self.may_submit(department.code, key):
                    raise CatalogueError(
                        f"department {department.code!r} is expected to submit {key!r}, "
                        "which is unknown or not open to it"
                    )
        missing = sorted(set(self.categories) - set(examples))
        if missing:
            raise CatalogueError(f"no example for the categories {', '.join(missing)}")
        for key, example in examples.items():
            if key not in self.categories or example.record.get("category") != key:
                raise CatalogueError(f"example {key!r} names an unknown or different category")
            if not self.may_submit(example.department, key):
                raise CatalogueError(f"example {key!r}: {example.department} may not submit it")
        self.examples = examples

    def _expand(self, category: Category) -> tuple[str, ...]:
        codes: list[str] = []
        for entry in category.submitters:
            if entry.startswith("kind:"):
                kind = entry.removeprefix("kind:")
                matched = [d.code for d in self.departments.values() if d.kind == kind]
                if not matched:
                    raise CatalogueError(
                        f"category {category.key!r}: no department of kind {kind!r}"
                    )
                codes.extend(matched)
            elif entry in self.departments:
                codes.append(entry)
            else:
                raise CatalogueError(f"category {category.key!r}: unknown submitter {entry!r}")
        return tuple(dict.fromkeys(codes))

    def may_submit(self, department: str, category: str) -> bool:
        return department in self.submitters.get(category, ())


def _check_category(category: Category) -> None:
    """Every field has a title (it heads the file column); rules name real date fields."""
    for path, schema in _fields(category.json_schema, "data"):
        if not isinstance(schema.get("title"), str) or not schema["title"].strip():
            raise CatalogueError(f"category {category.key!r}: field {path} has no title")
    dates = set(category.date_fields)
    named = [
        *category.quality.future_allowed,
        *(f for pair in category.quality.date_order for f in pair),
    ]
    if category.occurred_on_field is not None:
        named.append(category.occurred_on_field)
    for field in named:
        if field not in dates:
            raise CatalogueError(
                f"category {category.key!r}: {field!r} is not a date field of its schema"
            )


def _fields(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, sub in schema.get("properties", {}).items():
        yield f"{path}.{name}", sub
        yield from _fields(sub, f"{path}.{name}")
        items = sub.get("items")
        if isinstance(items, dict):
            yield from _fields(items, f"{path}.{name}[]")


def load_catalogue(directory: Path) -> Catalogue:
    try:
        raw_categories = _read(directory / "categories.yaml")
        raw_departments = _read(directory / "departments.yaml")
        raw_compliance = _read(directory / "compliance.yaml")
        raw_examples = _read(directory / "examples.yaml")
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read the catalogue in {directory}: {exc}") from exc
    departments = [_parse(Department, d, "department") for d in raw_departments["departments"]]
    categories = [_parse(Category, c, "category") for c in raw_categories["categories"]]
    compliance = _parse(ComplianceRules, raw_compliance, "compliance rules")
    examples = {
        key: _parse(Example, value, f"example {key!r}")
        for key, value in raw_examples["examples"].items()
    }
    version = (
        f"categories {raw_categories['version']}, departments {raw_departments['version']}, "
        f"compliance {compliance.version}"
    )
    return Catalogue(version, categories, departments, compliance, examples)


def _read(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text("utf-8"))
    if not isinstance(loaded, dict):
        raise CatalogueError(f"{path.name} is not a mapping")
    return loaded


def _parse(model: type[_M], raw: dict[str, Any], what: str) -> _M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        name = raw.get("key") or raw.get("code") or ""
        raise CatalogueError(f"{what} {name} is invalid: {exc}".replace("  ", " ")) from exc
