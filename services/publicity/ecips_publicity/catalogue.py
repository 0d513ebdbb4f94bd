"""The publication rules: a versioned data file, validated when the service starts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CATALOGUE_FILE = "publication.yaml"


class CatalogueError(RuntimeError):
    """The publication catalogue is invalid; the message says where."""


class DatedPublication(BaseModel):
    """Categories published only when the record was produced on or after ``since``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    since: date
    categories: tuple[str, ...]
    legal_basis: str


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=r"^[a-z][a-z_]{1,49}$")
    name: str


class PublicationCatalogue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    dated_publication: DatedPublication
    sections: tuple[Section, ...]

    @model_validator(mode="after")
    def _consistent(self) -> PublicationCatalogue:
        keys = [s.key for s in self.sections]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"sections defined twice: {duplicates}")
        unknown = sorted(set(self.dated_publication.categories) - set(keys))
        if unknown:
            raise ValueError(f"dated_publication names unknown categories: {unknown}")
        return self

    @property
    def section_names(self) -> dict[str, str]:
        return {s.key: s.name for s in self.sections}


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
