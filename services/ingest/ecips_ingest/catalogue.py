"""The record-category and department catalogues: versioned data files,
validated when the service starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

Disclosure = Literal["public", "authorized", "government"]
_M = TypeVar("_M", bound=BaseModel)


class CatalogueError(RuntimeError):
    """The catalogue files are invalid; the message names the entry."""


class Department(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[A-Z][A-Z0-9-]{1,39}$")
    name: str
    kind: Literal[
        "registration_authority",
        "credit_authority",
        "administrative",
        "court",
        "procuratorate",
        "supervisor",
    ]


class Category(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z_]{1,49}$")
    name: str
    disclosure: Disclosure
    publicity_period_days: int | None = Field(ge=1)
    legal_basis: str
    submitters: tuple[str, ...]
    json_schema: dict[str, Any]


class Catalogue:
    """Categories and departments, with submitter kinds expanded to codes."""

    def __init__(
        self,
        version: str,
        categories: list[Category],
        departments: list[Department],
    ) -> None:
        self.version = version
        self.departments = {d.code: d for d in departments}
        self.categories: dict[str, Category] = {}
        self.validators: dict[str, Draft202012Validator] = {}
        self.submitters: dict[str, tuple[str, ...]] = {}
        for category in categories:
            if category.key in self.categories:
                raise CatalogueError(f"category {category.key!r} is defined twice")
            try:
                Draft202012Validator.check_schema(category.json_schema)
            except SchemaError as exc:
                raise CatalogueError(
                    f"category {category.key!r}: invalid JSON Schema: {exc.message}"
                ) from exc
            self.categories[category.key] = category
            self.validators[category.key] = Draft202012Validator(
                category.json_schema, format_checker=FormatChecker()
            )
            self.submitters[category.key] = self._expand(category)

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


def load_catalogue(directory: Path) -> Catalogue:
    try:
        raw_categories = yaml.safe_load((directory / "categories.yaml").read_text("utf-8"))
        raw_departments = yaml.safe_load((directory / "departments.yaml").read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read the catalogue in {directory}: {exc}") from exc
    departments = [_parse(Department, d, "department") for d in raw_departments["departments"]]
    categories = [_parse(Category, c, "category") for c in raw_categories["categories"]]
    version = f"categories {raw_categories['version']}, departments {raw_departments['version']}"
    return Catalogue(version, categories, departments)


def _parse(model: type[_M], raw: dict[str, Any], what: str) -> _M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        name = raw.get("key") or raw.get("code") or "?"
        raise CatalogueError(f"{what} {name!r} is invalid: {exc}") from exc
