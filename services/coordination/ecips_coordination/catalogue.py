"""The post-registration approval catalogue and the departments it names:
versioned data files, validated when the service starts."""

from __future__ import annotations

import importlib.util
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ecips_coordination.scope import clauses

CATALOGUE_DIR = Path(__file__).parent / "catalogue"
APPROVALS_FILE = CATALOGUE_DIR / "approvals.yaml"
LOCAL_DEPARTMENTS_FILE = CATALOGUE_DIR / "departments.local.yaml"

_M = TypeVar("_M", bound=BaseModel)


class CatalogueError(RuntimeError):
    """A catalogue file is invalid; the message names the entry."""


class Department(BaseModel):
    """What coordination needs of a department. The shared file is ingest's and
    may carry more fields; they are not ours to judge, so they are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code: str = Field(pattern=r"^[A-Z][A-Z0-9-]{1,39}$")
    name: str = Field(min_length=1)
    kind: str = Field(min_length=1)


def _nfkc(values: list[str]) -> list[str]:
    cleaned = [unicodedata.normalize("NFKC", v).replace(" ", "") for v in values]
    if any(not v for v in cleaned):
        raise ValueError("blank phrase")
    return cleaned


class ApprovalItem(BaseModel):
    """One post-registration approval and how to recognise its activity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{1,59}$")
    activity: str = Field(min_length=1, max_length=200)
    approval: str = Field(min_length=1, max_length=200)
    certificate: str = Field(min_length=1, max_length=200)
    departments: tuple[str, ...] = Field(min_length=1)
    legal_basis: str = Field(min_length=1)
    keywords: list[str] = Field(min_length=1)
    exclusions: list[str] = Field(default_factory=list)

    _normalise = field_validator("keywords", "exclusions")(_nfkc)


class NoticeText(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    legal_basis: str
    text: str


class ApprovalsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    source: str
    notice: NoticeText
    items: list[ApprovalItem] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Match:
    """An approval the scope needs, with the clauses that show it."""

    item: ApprovalItem
    clauses: tuple[str, ...]


class ApprovalCatalogue:
    def __init__(self, data: ApprovalsFile, departments: dict[str, Department]) -> None:
        self.version = data.version
        self.source = data.source
        self.notice = data.notice
        self.departments = departments
        self.items: dict[str, ApprovalItem] = {}
        for item in data.items:
            if item.key in self.items:
                raise CatalogueError(f"approval item {item.key!r} is defined twice")
            unknown = [code for code in item.departments if code not in departments]
            if unknown:
                raise CatalogueError(
                    f"approval item {item.key!r}: unknown department(s) {', '.join(unknown)}"
                )
            self.items[item.key] = item

    def match(self, scope: str | None) -> list[Match]:
        """The items a business scope needs, in catalogue order."""
        if not scope:
            return []
        found: dict[str, list[str]] = {}
        for clause in clauses(scope):
            for item in self.items.values():
                if any(phrase in clause.text for phrase in item.exclusions):
                    continue
                if any(keyword in clause.positive for keyword in item.keywords):
                    found.setdefault(item.key, []).append(clause.text)
        return [
            Match(self.items[key], tuple(dict.fromkeys(found[key])))
            for key in self.items
            if key in found
        ]

    def department_name(self, code: str) -> str:
        department = self.departments.get(code)
        return department.name if department is not None else code


def shared_departments_file() -> Path | None:
    """The department catalogue that ingest serves (``GET /v1/departments``),
    read as data from the installed ingest package without importing it."""
    spec = importlib.util.find_spec("ecips_ingest")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "catalogue" / "departments.yaml"
        if candidate.is_file():
            return candidate
    return None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogueError(f"{path}: not a mapping")
    return raw


def _parse(model: type[_M], raw: Any, what: str) -> _M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        name = (raw.get("key") or raw.get("code")) if isinstance(raw, dict) else None
        label = f"{what} {name!r}" if name else what
        raise CatalogueError(f"{label} is invalid: {exc}") from exc


def load_departments(shared: Path | None, local: Path | None) -> dict[str, Department]:
    """Shared departments first; the local stopgap file adds missing codes only
    (a code in both must agree, so the stopgap can never rename a department)."""
    departments: dict[str, Department] = {}
    for path in (shared, local):
        if path is None:
            continue
        raw = _read_yaml(path)
        entries = raw.get("departments")
        if not isinstance(entries, list):
            raise CatalogueError(f"{path}: no departments list")
        for entry in entries:
            department = _parse(Department, entry, f"department in {path.name}")
            known = departments.get(department.code)
            if known is not None and known.name != department.name:
                raise CatalogueError(
                    f"department {department.code!r} differs between the shared and local files"
                )
            departments[department.code] = department
    return departments


def load_approval_catalogue(
    approvals: Path = APPROVALS_FILE,
    *,
    departments_file: Path | None = None,
    local_departments: Path | None = LOCAL_DEPARTMENTS_FILE,
) -> ApprovalCatalogue:
    shared = departments_file or shared_departments_file()
    if shared is None:
        raise CatalogueError(
            "the shared department catalogue was not found: install ecips-ingest or set "
            "ECIPS_COORDINATION_DEPARTMENTS_FILE"
        )
    departments = load_departments(shared, local_departments)
    raw = _read_yaml(approvals)
    entries = raw.get("items")
    if not isinstance(entries, list):
        raise CatalogueError(f"{approvals}: no items list")
    # Item by item, so an error names the item.
    items = [_parse(ApprovalItem, entry, "approval item") for entry in entries]
    data = _parse(ApprovalsFile, {**raw, "items": items}, f"approval catalogue {approvals.name}")
    return ApprovalCatalogue(data, departments)
