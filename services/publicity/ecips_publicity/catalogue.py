"""The publication rules and the portal's layout: a versioned data file,
validated when the service starts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CATALOGUE_FILE = "publication.yaml"
_KEY = r"^[a-z][a-z0-9_]{1,49}$"


class CatalogueError(RuntimeError):
    """The publication catalogue is invalid; the message says where."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatedPublication(_Frozen):
    """Categories published only when the record was produced on or after ``since``."""

    since: date
    categories: tuple[str, ...]
    legal_basis: str


class Repairable(_Frozen):
    category: str = Field(pattern=_KEY)
    minimum_publicity_days: int = Field(ge=0, le=36500)


class CreditRepairRule(_Frozen):
    """Which records a credit repair record may withdraw early, and how soon."""

    category: str = Field(pattern=_KEY)
    legal_basis: str
    repairable: tuple[Repairable, ...]

    @property
    def minimum_days(self) -> dict[str, int]:
        return {r.category: r.minimum_publicity_days for r in self.repairable}


class Status(_Frozen):
    code: str = Field(pattern=_KEY)
    name: str
    labels: tuple[str, ...]


class District(_Frozen):
    code: str = Field(pattern=r"^\d{6}$")
    name: str


class Section(_Frozen):
    key: str = Field(pattern=_KEY)
    name: str
    number_field: str | None = None
    date_field: str | None = None
    publicity_until_field: str | None = None


class ListDefinition(_Frozen):
    """A list (经营异常名录, 严重违法失信名单): listings paired with removals."""

    key: str = Field(pattern=_KEY)
    name: str
    listing: str
    removal: str


class Tab(_Frozen):
    key: str = Field(pattern=_KEY)
    name: str
    categories: tuple[str, ...] = ()
    master: bool = False
    measures: bool = False
    list_key: str | None = None


class PublicationCatalogue(_Frozen):
    version: str
    dated_publication: DatedPublication
    credit_repair: CreditRepairRule
    statuses: tuple[Status, ...]
    districts: tuple[District, ...]
    sections: tuple[Section, ...]
    lists: tuple[ListDefinition, ...]
    tabs: tuple[Tab, ...]
    field_labels: dict[str, str] = Field(default_factory=dict)
    value_labels: dict[str, dict[str, str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> PublicationCatalogue:
        keys = [s.key for s in self.sections]
        _no_duplicates("sections", keys)
        _no_duplicates("tabs", [t.key for t in self.tabs])
        _no_duplicates("lists", [x.key for x in self.lists])
        _no_duplicates("statuses", [s.code for s in self.statuses])
        _no_duplicates("status labels", [label for s in self.statuses for label in s.labels])
        _no_duplicates("districts", [d.code for d in self.districts])
        known = set(keys)
        named: dict[str, list[str]] = {
            "dated_publication": list(self.dated_publication.categories),
            "credit_repair": [self.credit_repair.category]
            + [r.category for r in self.credit_repair.repairable],
            "lists": [c for x in self.lists for c in (x.listing, x.removal)],
            "tabs": [c for t in self.tabs for c in t.categories],
        }
        for where, categories in named.items():
            unknown = sorted(set(categories) - known)
            if unknown:
                raise ValueError(f"{where} names unknown categories: {unknown}")
        in_tabs = named["tabs"]
        _no_duplicates("categories in tabs", in_tabs)
        missing = sorted(known - set(in_tabs))
        if missing:
            raise ValueError(f"sections in no tab (unreachable on the portal): {missing}")
        list_keys = {x.key for x in self.lists}
        unknown_lists = sorted({t.list_key for t in self.tabs if t.list_key} - list_keys)
        if unknown_lists:
            raise ValueError(f"tabs name unknown lists: {unknown_lists}")
        return self

    @property
    def section_names(self) -> dict[str, str]:
        return {s.key: s.name for s in self.sections}

    @property
    def sections_by_key(self) -> dict[str, Section]:
        return {s.key: s for s in self.sections}

    @property
    def lists_by_key(self) -> dict[str, ListDefinition]:
        return {x.key: x for x in self.lists}

    @property
    def district_names(self) -> dict[str, str]:
        return {d.code: d.name for d in self.districts}

    @property
    def status_names(self) -> dict[str, str]:
        return {s.code: s.name for s in self.statuses}

    def status_code(self, code: str | None, label: str) -> str:
        """The status code of an enterprise: the ledger's when it sent one,
        else looked up from the Chinese label (``active`` when unknown)."""
        codes = {s.code for s in self.statuses}
        if code in codes:
            return code
        for status in self.statuses:
            if label in status.labels or label == status.code:
                return status.code
        return "active"


def _no_duplicates(what: str, values: list[str]) -> None:
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise ValueError(f"{what} defined twice: {duplicates}")


def load_catalogue(directory: Path) -> PublicationCatalogue:
    path = directory / CATALOGUE_FILE
    try:
        raw = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read {path}: {exc}") from exc
    try:
        return PublicationCatalogue.model_validate(raw)
    except ValidationError as exc:
        raise CatalogueError(f"{path} is invalid: {exc}") from exc
