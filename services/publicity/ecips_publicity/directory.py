"""Names the portal shows beside codes: departments and data-field titles,
read from ingest's public catalogue (``GET /v1/departments``,
``GET /v1/categories``) and refreshed in the background.

Ingest owns these catalogues; publicity keeps only a copy in memory and
falls back to codes and its own labels while ingest cannot be reached.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

logger = logging.getLogger("ecips.publicity.directory")


@dataclass(frozen=True)
class Directory:
    departments: Mapping[str, str] = field(default_factory=dict)
    # category key -> data field -> title, in the schema's order
    field_titles: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    category_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def loaded(self) -> bool:
        return bool(self.departments or self.field_titles)


def schema_titles(schema: Any) -> dict[str, str]:
    """Every property title in a JSON Schema, nested objects and arrays included."""
    titles: dict[str, str] = {}

    def walk(node: Any) -> None:
        if not isinstance(node, Mapping):
            return
        properties = node.get("properties")
        if isinstance(properties, Mapping):
            for key, prop in properties.items():
                if isinstance(prop, Mapping):
                    title = prop.get("title")
                    if isinstance(title, str) and key not in titles:
                        titles[str(key)] = title
                    walk(prop)
        items = node.get("items")
        if isinstance(items, Mapping):
            walk(items)
        for combinator in ("allOf", "anyOf", "oneOf"):
            branches = node.get(combinator)
            if isinstance(branches, list):
                for branch in branches:
                    walk(branch)

    walk(schema)
    return titles


def parse_directory(categories: Any, departments: Any) -> Directory:
    titles: dict[str, dict[str, str]] = {}
    names: dict[str, str] = {}
    for item in categories.get("items", []) if isinstance(categories, Mapping) else []:
        if isinstance(item, Mapping) and isinstance(item.get("key"), str):
            titles[item["key"]] = schema_titles(item.get("json_schema"))
            if isinstance(item.get("name"), str):
                names[item["key"]] = item["name"]
    codes: dict[str, str] = {}
    for item in departments.get("items", []) if isinstance(departments, Mapping) else []:
        if isinstance(item, Mapping) and isinstance(item.get("code"), str):
            codes[item["code"]] = str(item.get("name") or item["code"])
    return Directory(departments=codes, field_titles=titles, category_names=names)


async def fetch_directory(http: httpx.AsyncClient, ingest_url: str) -> Directory:
    categories = await http.get(f"{ingest_url}/v1/categories", timeout=10)
    departments = await http.get(f"{ingest_url}/v1/departments", timeout=10)
    categories.raise_for_status()
    departments.raise_for_status()
    return parse_directory(categories.json(), departments.json())


class DirectoryHolder:
    """The current directory; replaced whole by the refresh loop."""

    def __init__(self) -> None:
        self.current = Directory()

    async def refresh_forever(
        self,
        http: httpx.AsyncClient,
        ingest_url: str,
        *,
        interval: float,
        retry: float,
    ) -> None:
        while True:
            try:
                self.current = await fetch_directory(http, ingest_url)
                wait = interval
            except (httpx.HTTPError, ValueError) as exc:
                logger.warning("cannot read ingest's catalogue (%s); retrying", exc)
                wait = retry
            await asyncio.sleep(wait)
