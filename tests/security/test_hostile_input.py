"""Hostile input against the running system (`ecips up`), over HTTP only.

What the product does with each kind of text, the same in every service:

* SQL metacharacters (``'; DROP TABLE x;--``, ``%``, ``_``, ``\\``), CJK (astral
  extension B included), emoji (astral, ZWJ sequences, flags), combining marks (not
  normalised), right-to-left marks and overrides, tab and line breaks: accepted, and a
  record round-trips byte-exact through ingest, the ledger and (public categories)
  publicity, personal-data masking aside; a search takes ``%`` and ``_`` literally.
* NUL, the other C0 controls, DEL and C1 controls: refused, 422 ``control_character``
  naming the field (PostgreSQL cannot store NUL; the others never belong in a record).
* Half of a UTF-16 surrogate pair (JSON ``"\\ud800"``): refused, 422
  ``unpaired_surrogate`` naming the field; no UTF-8 text, database or event holds it.
* JSON a record may not be written in: duplicate keys, NaN/Infinity, nesting too deep
  to parse, numbers too long to read: 4xx, never a 500.
* Bodies over a limit: 413, cut while streaming (a record at 256 KiB, a batch at its
  maximum size), the rest never read.
* Batches: a zip bomb (declared sizes, ratio, parts openpyxl reads whole) is refused at
  upload; a forged sheet of more rows than Excel allows fails its batch with a clear
  code; the ingest process's memory stays bounded; a refused or failed batch writes no
  record. Formula-looking cells are stored as sent and neutralised in every CSV the
  system writes back. Upload file names are labels, never paths. A slow upload does
  not hold up other requests; no body timeout exists in the app (uvicorn has none; in
  Kubernetes the ingress buffers and times out request bodies, see deploy/README.md).

After every refusal the test checks that nothing was written: the enterprise's records
in the ledger, the department's batches in ingest.
"""

from __future__ import annotations

import csv
import io
import json
import random
import select
import socket
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from ecips_common.auth import issue_token
from ecips_publicity.masking import mask_personal_data
from tests.system import RunningSystem, eventually, new_uscc

# One string with every kind of text the product accepts (no surrounding whitespace:
# ingest strips it). `甲%乙_丙` checks that searches take LIKE wildcards literally.
HOSTILE_TEXT = (
    '\'; DROP TABLE x;--\t100%_\\"q"\n甲%乙_丙 重庆𠀀𪚥 😀👩‍👩‍👧🇨🇳 '
    "e\u0301ı\u0308 \u200fشركة\u202eabc\u202c"
)
# Refused, by class: (sample, expected code).
REFUSED_TEXT: dict[str, tuple[str, str]] = {
    "nul": ("前\x00后", "control_character"),
    "c0": ("前\x1b[31m后\x0b", "control_character"),
    "del": ("前\x7f后", "control_character"),
    "c1": ("前\x85后\x9b", "control_character"),
    "high_surrogate": ("前\ud800后", "unpaired_surrogate"),
    "low_surrogate": ("前\udfff后", "unpaired_surrogate"),
}
FORMULAS = ("=cmd|' /C calc'!A0", "+1+2", "-3+4", "@SUM(A1:A2)", "\t=1+1", "\r=2+2")
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
LISTING = "abnormal_operation_listing"
ALL_SCOPES = ("records:write", "ledger:read", "tasks:handle", "rules:admin", "reports:read")


# --- talking to the system -----------------------------------------------------------


@dataclass
class Api:
    system: RunningSystem
    http: httpx.Client
    key: bytes
    tokens: dict[tuple[str, tuple[str, ...]], dict[str, str]] = field(default_factory=dict)

    def url(self, service: str, path: str) -> str:
        return f"{self.system.url(service)}{path}"

    def headers(self, department: str, *scopes: str) -> dict[str, str]:
        key = (department, scopes)
        if key not in self.tokens:
            token = issue_token(self.key, department=department, scopes=scopes)
            self.tokens[key] = {"Authorization": f"Bearer {token}"}
        return self.tokens[key]

    def post_json(self, department: str, path: str, body: Any, **kw: Any) -> httpx.Response:
        """Posts ``body`` as JSON text (lone surrogates escaped, as JSON allows)."""
        return self.http.post(
            self.url("ingest", path),
            content=json.dumps(body, ensure_ascii=True).encode(),
            headers={
                **self.headers(department, "records:write"),
                "Content-Type": "application/json",
            },
            **kw,
        )

    def ledger_records(self, uscc: str) -> list[dict[str, Any]]:
        response = self.http.get(
            self.url("ledger", f"/v1/enterprises/{uscc}/records"),
            params={"limit": 200},
            headers=self.headers("CQ-NDRC", "ledger:read"),
        )
        if response.status_code == 404:
            return []
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def batches(self, department: str) -> list[str]:
        response = self.http.get(
            self.url("ingest", "/v1/batches"),
            params={"limit": 100},
            headers=self.headers(department, "records:write"),
        )
        assert response.status_code == 200, response.text
        return [b["batch_id"] for b in response.json()["items"]]

    def upload(
        self,
        department: str,
        filename: str,
        content: bytes,
        *,
        category: str | None = LISTING,
        fmt: str | None = None,
    ) -> httpx.Response:
        form = {k: v for k, v in (("category", category), ("format", fmt)) if v is not None}
        return self.http.post(
            self.url("ingest", "/v1/batches"),
            files={"file": (filename, content, "application/octet-stream")},
            data=form,
            headers=self.headers(department, "records:write"),
        )

    def finished_batch(self, department: str, batch_id: str) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            batch: dict[str, Any] = self.http.get(
                self.url("ingest", f"/v1/batches/{batch_id}"),
                headers=self.headers(department, "records:write"),
            ).json()
            return batch if batch["status"] in ("done", "failed") else None

        result: dict[str, Any] = eventually(finished, timeout=60, interval=0.2)
        return result


@pytest.fixture(scope="module")
def api(system: RunningSystem) -> Iterator[Api]:
    key = (system.data_dir / "keys" / "signing-key.pem").read_bytes()
    with httpx.Client(timeout=60) as http:
        yield Api(system, http, key)


def new_batches(api: Api, department: str, before: list[str]) -> set[str]:
    """The department's batches created since ``before`` was listed."""
    return set(api.batches(department)) - set(before)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response's problem document, after checking its status and media type."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"]
    return body


def unique_word() -> str:
    return "".join(random.choices("鑫瑞祥泰华宏源达丰盛恒昌隆兴德福嘉荣锦鸿翔润博", k=6))


# --- the categories and their text fields, from the catalogue ------------------------


@dataclass(frozen=True)
class Category:
    key: str
    disclosure: str
    department: str
    schema: dict[str, Any]
    example: dict[str, Any]


@pytest.fixture(scope="module")
def categories(api: Api) -> list[Category]:
    listed = api.http.get(api.url("ingest", "/v1/categories")).json()["items"]
    found = []
    for item in listed:
        detail = api.http.get(api.url("ingest", f"/v1/categories/{item['key']}")).json()
        found.append(
            Category(
                key=item["key"],
                disclosure=item["disclosure"],
                department=detail["example"]["department"],
                schema=item["json_schema"],
                example=detail["example"]["record"],
            )
        )
    assert len(found) >= 25, "the category catalogue shrank"
    return found


ENTERPRISE_NAME = "重庆测试建材有限公司"


@pytest.fixture(scope="module")
def register(api: Api, categories: list[Category]) -> Callable[[], str]:
    """Registers a new enterprise (named ENTERPRISE_NAME) and waits until the ledger
    has it: records filed under it are then listed by the ledger, and a test can see
    that a refused input left nothing there."""
    example = next(c for c in categories if c.key == "registration").example

    def registered() -> str:
        uscc = new_uscc()
        record = {
            **example,
            "uscc": uscc,
            "source_id": f"设立-{uscc}",
            "enterprise_name": ENTERPRISE_NAME,
            "data": {**example["data"], "name": ENTERPRISE_NAME},
        }
        response = api.post_json("CQ-SAMR", "/v1/records", record)
        assert response.status_code == 202, response.text
        eventually(lambda: api.ledger_records(uscc), timeout=60)
        return uscc

    return registered


def filed(api: Api, uscc: str) -> list[dict[str, Any]]:
    """The records the ledger holds for an enterprise, its registration aside."""
    return [r for r in api.ledger_records(uscc) if r["category"] != "registration"]


def _is_free_text(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "string" and not (
        {"enum", "const", "format", "pattern"} & schema.keys()
    )


def fill_text(
    schema: dict[str, Any], value: Any, text: Callable[[int | None], str], path: str = "data"
) -> tuple[Any, list[str]]:
    """``value`` (the example's data) with every free-text field of ``schema`` set to
    ``text(maxLength)``, optional ones added; returns it and the fields' paths."""
    if _is_free_text(schema):
        return text(schema.get("maxLength")), [path]
    if schema.get("type") == "object" and isinstance(value, dict):
        result = dict(value)
        paths: list[str] = []
        for name, sub in schema.get("properties", {}).items():
            if name in value or _is_free_text(sub):
                result[name], found = fill_text(sub, value.get(name), text, f"{path}.{name}")
                paths += found
        return result, paths
    if schema.get("type") == "array" and isinstance(value, list):
        items, paths = [], []
        for index, item in enumerate(value):
            filled, found = fill_text(schema.get("items", {}), item, text, f"{path}[{index}]")
            items.append(filled)
            paths += found
        return items, paths
    return value, []


def fitted(text: str) -> Callable[[int | None], str]:
    """``text`` cut to a field's maxLength (in characters, as JSON Schema counts)."""
    return lambda limit: text if limit is None else text[:limit].strip()


# --- accepted text round-trips ---------------------------------------------------------


@dataclass
class HostileEnterprise:
    uscc: str
    name: str
    word: str
    submitted: dict[str, dict[str, Any]]  # category -> the record as sent


# Categories that change the enterprise itself go last, after everything filed under it.
_LAST = ("registration_change", "deregistration")


@pytest.fixture(scope="module")
def hostile_enterprise(api: Api, categories: list[Category]) -> HostileEnterprise:
    """An enterprise registered, and a record of every category filed under it, with
    hostile text in every free-text field, the source id and the enterprise name."""
    word = unique_word()
    uscc = new_uscc()
    name = f"{word}甲%乙_丙'; DROP TABLE x;--\\重庆𠀀😀👩‍👩‍👧e\u0301\u200fشركة\u202e有限公司"
    by_key = {c.key: c for c in categories}
    order = ["registration"]
    order += [k for k in by_key if k not in order and k not in _LAST]
    order += [k for k in _LAST if k in by_key]
    submitted: dict[str, dict[str, Any]] = {}
    for key in order:
        category = by_key[key]
        data, paths = fill_text(category.schema, category.example["data"], fitted(HOSTILE_TEXT))
        assert paths, f"{key}: no free-text field found"
        if key == "registration":
            data["name"] = name
        record = {
            **category.example,
            "uscc": uscc,
            "enterprise_name": name,
            "source_id": f"{key}-{word}-'; DROP TABLE x;--%_\\😀e\u0301",
            "data": data,
        }
        record.pop("registration_number", None)
        response = api.post_json(category.department, "/v1/records", record)
        assert response.status_code == 202, f"{key}: {response.status_code} {response.text}"
        submitted[key] = record
    return HostileEnterprise(uscc, name, word, submitted)


def test_hostile_text_round_trips_through_ingest_ledger_and_publicity(
    api: Api, hostile_enterprise: HostileEnterprise, categories: list[Category]
) -> None:
    enterprise = hostile_enterprise
    expected = enterprise.submitted

    def filed() -> list[dict[str, Any]] | None:
        records = api.ledger_records(enterprise.uscc)
        return records if len(records) >= len(expected) else None

    records = {r["category"]: r for r in eventually(filed, timeout=60)}
    assert set(records) == set(expected)
    for key, sent in expected.items():
        stored = records[key]
        assert stored["data"] == sent["data"], key
        assert stored["enterprise_name"] == sent["enterprise_name"], key
        assert stored.get("source_id", sent["source_id"]) == sent["source_id"], key

    # The public read model: the enterprise under its name, every public record masked
    # exactly as the masking rules say and otherwise unchanged.
    publicity = api.system.url("publicity")

    def profile() -> dict[str, Any] | None:
        response = api.http.get(f"{publicity}/v1/enterprises/{enterprise.uscc}")
        return response.json() if response.status_code == 200 else None

    public = eventually(profile, timeout=60)
    assert public["name"] == enterprise.name
    sections = {s["key"] for s in public["sections"]}
    public_keys = {c.key for c in categories if c.disclosure == "public"} & set(expected)
    shown = 0
    for key in sorted(public_keys & sections):
        items = api.http.get(
            f"{publicity}/v1/enterprises/{enterprise.uscc}/records", params={"category": key}
        ).json()["items"]
        assert len(items) == 1, key
        assert items[0]["data"] == mask_personal_data(expected[key]["data"]), key
        assert items[0]["source_id"] == expected[key]["source_id"], key
        shown += 1
    assert shown >= 10, f"only {shown} public sections shown: {sorted(sections)}"
    for key in {c.key for c in categories if c.disclosure != "public"} & sections:
        pytest.fail(f"non-public category {key} is on the public profile")


def test_search_takes_hostile_text_literally(
    api: Api, hostile_enterprise: HostileEnterprise
) -> None:
    publicity = api.system.url("publicity")
    uscc = hostile_enterprise.uscc

    def hits(q: str) -> list[str]:
        response = api.http.get(f"{publicity}/v1/search", params={"q": q})
        assert response.status_code == 200, response.text
        return [item["uscc"] for item in response.json()["items"]]

    word = hostile_enterprise.word
    eventually(lambda: uscc in hits(f"{word}甲%乙_丙"), timeout=60)
    assert uscc in hits(f"{word}甲%乙_丙'; DROP TABLE x;--")
    assert uscc in hits(hostile_enterprise.name)
    # `%` and `_` are characters, not wildcards: `甲%丙` is not in the name.
    assert uscc not in hits(f"{word}甲%丙")
    assert uscc not in hits(f"{word}甲_乙")
    for q in (
        "'; DROP TABLE enterprises;--",
        "%%%%",
        "____",
        "\\\\\\",
        "😀👩‍👩‍👧🇨🇳",
        "e\u0301\u202e",
    ):
        response = api.http.get(f"{publicity}/v1/search", params={"q": q})
        assert response.status_code in (200, 422), f"{q!r}: {response.text}"


# --- refused text ----------------------------------------------------------------------


def test_control_characters_and_lone_surrogates_are_refused_naming_each_field(
    api: Api, categories: list[Category], register: Callable[[], str]
) -> None:
    uscc = register()
    word = unique_word()
    for name, (sample, code) in REFUSED_TEXT.items():
        for category in categories:
            data, paths = fill_text(category.schema, category.example["data"], fitted(sample))
            if not paths:
                continue
            record = {
                **category.example,
                "uscc": uscc,
                "enterprise_name": ENTERPRISE_NAME,
                "source_id": f"{category.key}-{word}-{name}",
                "data": data,
            }
            body = problem(api.post_json(category.department, "/v1/records", record), 422)
            named = {e["field"]: e["code"] for e in body["errors"]}
            assert named == dict.fromkeys(paths, code), f"{category.key}, {name}: {named}"
        # The envelope's text fields, one at a time.
        example = {**categories[0].example, "enterprise_name": ENTERPRISE_NAME}
        for field_name in ("source_id", "enterprise_name"):
            record = {**example, "uscc": uscc, "source_id": f"env-{word}-{name}"}
            record[field_name] = f"{record[field_name]}{sample}"
            body = problem(api.post_json(categories[0].department, "/v1/records", record), 422)
            assert [(e["field"], e["code"]) for e in body["errors"]] == [(field_name, code)]
        # In a field name too: named, never a 500.
        record = {
            **example,
            "uscc": uscc,
            "source_id": f"key-{word}-{name}",
            "data": {**example["data"], f"键{sample}": "值"},
        }
        body = problem(api.post_json(categories[0].department, "/v1/records", record), 422)
        assert [e["code"] for e in body["errors"]] in ([code], ["unknown_field"]), body
    # Nothing half-written: the same source id is new when sent clean, and it is the only
    # record the ledger gets.
    penalty = next(c for c in categories if c.key == "administrative_penalty")
    clean = {
        **penalty.example,
        "uscc": uscc,
        "enterprise_name": ENTERPRISE_NAME,
        "source_id": f"{penalty.key}-{word}-nul",
    }
    response = api.post_json(penalty.department, "/v1/records", clean)
    assert response.status_code == 202 and response.json()["revision"] == 1, response.text
    records = eventually(lambda: filed(api, uscc), timeout=60)
    time.sleep(1)
    assert [r["source_id"] for r in filed(api, uscc)] == [clean["source_id"]], records


def test_coordination_and_rules_refuse_unstorable_text(api: Api) -> None:
    coordination = api.system.url("coordination")
    handler = {**api.headers("CQ-FIN", "tasks:handle"), "Content-Type": "application/json"}
    before = api.http.get(f"{coordination}/v1/subscriptions", headers=handler).json()["items"]
    for name, (sample, code) in REFUSED_TEXT.items():
        body = {"url": "https://hooks.example.gov.cn/ecips", "description": f"说明{sample}"}
        response = api.http.post(
            f"{coordination}/v1/subscriptions",
            content=json.dumps(body, ensure_ascii=True),
            headers=handler,
        )
        found = problem(response, 422)
        assert [(e["field"], e["code"]) for e in found["errors"]] == [("description", code)], name
    after = api.http.get(f"{coordination}/v1/subscriptions", headers=handler).json()["items"]
    assert len(after) == len(before), "a refused subscription was stored"

    # The rules catalogue takes free text from rules:admin: what no database stores is
    # refused (422), nothing is saved, and the service keeps answering.
    rules = api.system.url("rules")
    admin = {**api.headers("CQ-NDRC", "rules:admin"), "Content-Type": "application/json"}
    versions = api.http.get(f"{rules}/v1/catalogue/versions", headers=admin).json()["items"]
    rule = api.http.get(f"{rules}/v1/rules").json()["items"][0]
    for sample, code in (("说明\x00", "control_character"), ("说明\ud800", "unpaired_surrogate")):
        bodies: tuple[tuple[dict[str, Any], str], ...] = (
            ({"note": sample, "changes": {"upsert": [{**rule, "title": "修订后的标题"}]}}, "note"),
            (
                {"note": "测试", "changes": {"upsert": [{**rule, "title": sample}]}},
                "changes.upsert.0.title",
            ),
        )
        for body, path in bodies:
            response = api.http.post(
                f"{rules}/v1/catalogue/versions",
                content=json.dumps(body, ensure_ascii=True),
                headers=admin,
            )
            found = problem(response, 422)
            assert [(e["field"], e["code"]) for e in found["errors"]] == [(path, code)]
    now = api.http.get(f"{rules}/v1/catalogue/versions", headers=admin).json()["items"]
    assert len(now) == len(versions), "a refused catalogue version was stored"


def test_public_search_refuses_control_characters(api: Api) -> None:
    publicity = api.system.url("publicity")
    for sample, _ in REFUSED_TEXT.values():
        if "\ud800" <= sample[1] <= "\udfff":
            continue  # a URL cannot carry one; see the raw bytes below
        for parameter in ("q", "legal_representative"):
            params = {"q": "重庆渝信", parameter: f"重庆{sample}"}
            body = problem(api.http.get(f"{publicity}/v1/search", params=params), 422)
            assert [(e["field"], e["code"]) for e in body["errors"]] == [
                (parameter, "control_character")
            ]
    # Percent-escapes of a surrogate or of bytes that are no UTF-8 decode to U+FFFD.
    for raw in ("%ED%A0%80%ED%A0%80", "%FF%FE%FD", "%C0%80%C0%80"):
        response = api.http.get(f"{publicity}/v1/search?q={raw}")
        assert response.status_code in (200, 422), response.text


def test_every_query_and_path_parameter_survives_hostile_text(api: Api) -> None:
    """Every parameter of every operation of every service, from its OpenAPI document,
    with each kind of hostile text: never a 5xx."""
    headers = api.headers("CQ-SAMR", *ALL_SCOPES)
    values = ["'; DROP TABLE x;--%_\\😀𠀀e\u0301\u202e", "x" * 5000, "a\x00b\x1b\x85"]
    raw_values = ["%ED%A0%80", "%FF%FE"]  # a surrogate; bytes that are no UTF-8
    failures: list[str] = []
    for service in ("ingest", "ledger", "publicity", "coordination", "rules"):
        spec = api.http.get(api.url(service, "/openapi.json")).json()
        for path, item in spec["paths"].items():
            if path.endswith("/stream") or path in ("/metrics",):
                continue
            for method, op in item.items():
                if method not in ("get", "delete"):
                    continue
                parameters = [p for p in op.get("parameters", []) if p["in"] in ("query", "path")]
                for parameter in parameters:
                    for value in [*values, *raw_values]:
                        url = _with_parameter(path, parameters, parameter, value)
                        response = api.http.request(
                            method.upper(), api.url(service, url), headers=headers
                        )
                        if response.status_code >= 500:
                            failures.append(
                                f"{service} {method.upper()} {url[:120]}: "
                                f"{response.status_code} {response.text[:200]}"
                            )
    assert not failures, "\n".join(failures)


def _with_parameter(
    path: str, parameters: list[dict[str, Any]], target: dict[str, Any], value: str
) -> str:
    """The URL with ``target`` set to ``value`` (percent-encoded unless it is already)
    and the other path parameters well formed."""
    text = value if value.startswith("%") else quote(value, safe="")
    url = path
    for parameter in parameters:
        if parameter["in"] != "path":
            continue
        filler = text if parameter is target else _well_formed(parameter["name"])
        url = url.replace("{" + parameter["name"] + "}", filler)
    if target["in"] == "query":
        url += f"?{target['name']}={text}"
    return url


def _well_formed(name: str) -> str:
    if name == "uscc":
        return new_uscc()
    if name.endswith("_id"):
        return str(uuid.uuid4())
    if name == "number":
        return "1"
    return "registration"


# --- malformed and oversized JSON --------------------------------------------------------


def test_json_that_is_not_a_record_is_refused_not_crashed_on(
    api: Api, categories: list[Category], register: Callable[[], str]
) -> None:
    category = next(c for c in categories if c.key == "administrative_penalty")
    uscc = register()
    base = {
        **category.example,
        "uscc": uscc,
        "enterprise_name": ENTERPRISE_NAME,
        "source_id": f"json-{uscc}",
    }
    text = json.dumps(base, ensure_ascii=False)
    samr = {**api.headers(category.department, "records:write"), "Content-Type": "application/json"}

    def send(body: str | bytes) -> httpx.Response:
        content = body.encode() if isinstance(body, str) else body
        return api.http.post(api.url("ingest", "/v1/records"), content=content, headers=samr)

    cases: dict[str, tuple[bytes | str, int, str]] = {
        # 100,000 levels: more than Python's parser can nest.
        "nested arrays": (b"[" * 100_000 + b"]" * 100_000, 422, "invalid_json"),
        "nested objects in data": (
            text[:-2] + ', "note": ' + '{"a":' * 20_000 + "1" + "}" * 20_000 + "}}",
            422,
            "invalid_json",
        ),
        "NaN": (text.replace('"50000"', "NaN"), 422, "invalid_json"),
        "Infinity": (text.replace('"50000"', "-Infinity"), 422, "invalid_json"),
        "a number of 5,000 digits": (text.replace('"50000"', "1" * 5000), 422, "invalid_json"),
        "a float beyond double": (text.replace('"50000"', "1e400"), 422, "invalid_json"),
        "duplicate keys": (
            text.replace('"category": ', '"category": "registration", "category": ', 1),
            422,
            "duplicate_key",
        ),
        "duplicate keys in data": (
            text.replace('"facts": ', '"facts": "甲", "facts": ', 1),
            422,
            "duplicate_key",
        ),
        "not UTF-8": (text.encode("utf-8").replace("罚".encode(), b"\xff\xfe", 1), 422, ""),
        "not JSON": ("{'category': 1}", 422, "invalid_json"),
        "a JSON string": ('"record"', 422, ""),
    }
    for name, (body, status, code) in cases.items():
        started = time.monotonic()
        response = send(body)
        found = problem(response, status)
        assert time.monotonic() - started < 5, name
        codes = [e["code"] for e in found.get("errors") or []] + [found["code"]]
        assert not code or code in codes, f"{name}: {found}"
    response = send(text)  # the same record, well formed: new, and the only one filed
    assert response.status_code == 202 and response.json()["revision"] == 1, response.text
    eventually(lambda: filed(api, uscc), timeout=60)
    time.sleep(1)
    assert len(filed(api, uscc)) == 1


def test_bodies_over_the_limits_are_cut_with_413(api: Api) -> None:
    samr = api.headers("CQ-SAMR", "records:write")
    port = api.system.ports["ingest"]
    batches = api.batches("CQ-SAMR")

    # A record: declared too large, refused before a byte of the body is read…
    json_headers = {**samr, "Content-Type": "application/json"}
    answer = declared_upload(port, "/v1/records", json_headers, b'{"category": "', 50 << 20)
    assert answer.status == 413 and b"payload_too_large" in answer.body, answer
    # …or sent chunked, without a length: cut at the limit, 50 MiB never read.
    answer = chunked_upload(port, "/v1/records", json_headers, b"", 50 << 20)
    assert answer.status == 413, answer
    assert answer.sent_before_answer < 16 << 20, answer

    # A batch: declared too large, 413 at once (nothing read, nothing stored).
    boundary = "hostile-boundary"
    preamble = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="category"\r\n\r\n{LISTING}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    form = {**samr, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    started = time.monotonic()
    answer = declared_upload(port, "/v1/batches", form, preamble, 300 << 20)
    assert answer.status == 413 and time.monotonic() - started < 5, answer
    # Chunked past the limit (200 MiB): cut while streaming, spooled to disk meanwhile.
    answer = chunked_upload(port, "/v1/batches", form, preamble, 260 << 20, filler=b"a,b,c\r\n")
    assert answer.status == 413, answer
    assert answer.sent_before_answer < 240 << 20, answer
    assert b"payload_too_large" in answer.body
    assert new_batches(api, "CQ-SAMR", batches) == set(), "a refused upload left a batch"


def test_every_service_cuts_oversized_bodies_with_413(api: Api) -> None:
    """Outside ingest's uploads, no request body is read past 4 MiB (the
    services' general limit): declared larger, refused before reading; sent
    chunked, cut while streaming. A public endpoint among them."""
    targets = [
        ("rules", "/v1/checks", {}),
        ("ledger", "/v1/enterprises/lookup", api.headers("CQ-TAX", "ledger:read")),
        ("coordination", "/v1/subscriptions", api.headers("CQ-FIN", "tasks:handle")),
    ]
    for service, path, headers in targets:
        port = api.system.ports[service]
        json_headers = {**headers, "Content-Type": "application/json"}
        answer = declared_upload(port, path, json_headers, b'{"usccs": ["', 50 << 20)
        assert answer.status == 413 and b"payload_too_large" in answer.body, (service, answer)
        answer = chunked_upload(port, path, json_headers, b'{"usccs": ["', 50 << 20)
        assert answer.status == 413 and b"payload_too_large" in answer.body, (service, answer)
        assert answer.sent_before_answer < 16 << 20, (service, answer)


def test_a_slow_upload_does_not_hold_up_other_requests(api: Api) -> None:
    """Uvicorn has no body timeout, and the app adds none: a slow body costs a
    connection and a coroutine, not a worker. In Kubernetes the ingress buffers request
    bodies and times out slow ones (deploy/README.md)."""
    samr = api.headers("CQ-SAMR", "records:write")
    batches = api.batches("CQ-SAMR")
    boundary = "slow-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="category"\r\n\r\n{LISTING}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n" + "source_id,uscc\r\n" * 600
    ).encode()
    slow = socket.create_connection(("127.0.0.1", api.system.ports["ingest"]))
    head = (
        f"POST /v1/batches HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body) + 100}\r\n"
        f"Authorization: {samr['Authorization']}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
    )
    slow.sendall(head.encode())
    stop = threading.Event()

    def trickle() -> None:
        for offset in range(0, len(body), 16):
            if stop.wait(0.05):
                return
            slow.sendall(body[offset : offset + 16])

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        slowest = 0.0
        for _ in range(10):
            started = time.monotonic()
            response = api.http.get(api.url("ingest", "/v1/categories"))
            assert response.status_code == 200
            response = api.http.get(api.url("ingest", "/v1/batches"), headers=samr)
            assert response.status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.2)
        assert sender.is_alive(), "the slow upload finished too soon to prove anything"
        # Held up, they would wait for the whole trickle (about half a minute).
        assert slowest < 5.0, f"requests took {slowest:.2f} s beside a slow upload"
    finally:
        stop.set()
        sender.join()
        slow.close()  # the body never completes: the upload is abandoned
    time.sleep(0.5)
    assert new_batches(api, "CQ-SAMR", batches) == set(), "an abandoned upload left a batch"


@dataclass(frozen=True)
class RawAnswer:
    status: int
    sent_before_answer: int
    body: bytes


def _read_answer(sock: socket.socket, sent: int) -> RawAnswer:
    sock.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")[1:]
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return RawAnswer(status, sent, body)


def chunked_upload(
    port: int,
    path: str,
    headers: dict[str, str],
    preamble: bytes,
    total: int,
    *,
    filler: bytes = b"x",
) -> RawAnswer:
    """POST ``total`` bytes with chunked encoding, stopping as soon as an answer comes
    (an HTTP client that reads early answers, as curl does)."""
    block = (filler * ((1 << 20) // len(filler) + 1))[: 1 << 20]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        sock.sendall(f"{head}{lines}\r\n".encode())
        sent = 0
        try:
            for chunk in (preamble, *([block] * (total // len(block) + 1))):
                if select.select([sock], [], [], 0)[0]:
                    break
                if chunk:
                    sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    sent += len(chunk)
                if sent >= total:
                    break
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the server stopped reading: its answer is waiting
        return _read_answer(sock, sent)


def declared_upload(
    port: int, path: str, headers: dict[str, str], preamble: bytes, declared: int
) -> RawAnswer:
    """Headers declaring ``declared`` bytes, then only the preamble."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {declared}\r\n"
        sock.sendall(f"{head}{lines}\r\n".encode() + preamble)
        return _read_answer(sock, len(preamble))


# --- batches: CSV, NDJSON, XLSX -----------------------------------------------------------

LISTING_COLUMNS = [
    "source_id",
    "uscc",
    "enterprise_name",
    "decision_number",
    "authority",
    "decided_on",
    "reason",
]


def listing_row(source_id: str, uscc: str, reason: str = "未按规定报送年度报告") -> list[str]:
    return [
        source_id,
        uscc,
        ENTERPRISE_NAME,
        f"渝中市监列〔2025〕{source_id}",
        "重庆市渝中区市场监督管理局",
        "2025-07-01",
        reason,
    ]


def csv_file(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(LISTING_COLUMNS)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def csv_cells(content: bytes) -> list[list[str]]:
    csv.field_size_limit(1 << 24)  # an errors file echoes whole NDJSON lines
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def test_csv_formula_injection_is_stored_as_sent_and_neutralised_in_csv_output(
    api: Api, register: Callable[[], str]
) -> None:
    word = unique_word()
    uscc = register()
    rows = [listing_row(f"{word}-f{i}", uscc, reason=f) for i, f in enumerate(FORMULAS)]
    # A row rejected for a formula-looking USCC and a NUL: echoed in errors.csv.
    rows.append([*listing_row('=HYPERLINK("http://x.example","点此")', "=1+2")[:6], "原因\x00"])
    rows.append(listing_row(f"{word}-nul", uscc, reason="@原因\x00"))
    response = api.upload("CQ-SAMR", "formulas.csv", csv_file(rows))
    assert response.status_code == 202, response.text
    batch = api.finished_batch("CQ-SAMR", response.json()["batch_id"])
    assert (batch["status"], batch["accepted"], batch["rejected"]) == ("done", len(FORMULAS), 2)

    # Stored as sent (surrounding whitespace aside, which every text loses).
    def all_filed() -> list[dict[str, Any]] | None:
        records = filed(api, uscc)
        return records if len(records) == len(FORMULAS) else None

    reasons = sorted(r["data"]["reason"] for r in eventually(all_filed, timeout=60))
    assert reasons == sorted(f.strip() for f in FORMULAS)

    errors = api.http.get(
        api.url("ingest", f"/v1/batches/{batch['batch_id']}/errors.csv"),
        headers=api.headers("CQ-SAMR", "records:write"),
    )
    assert errors.status_code == 200
    lines = csv_cells(errors.content)
    assert len(lines) == 3, lines
    _assert_neutralised(lines)
    assert lines[1][2] == '\'=HYPERLINK("http://x.example","点此")'
    assert lines[2][-1] == "'@原因\ufffd", "NUL is echoed as U+FFFD, the formula quoted"

    # The compliance report's CSV goes through the same writer.
    period = datetime.now(UTC).strftime("%Y-%m")
    report = api.http.get(
        api.url("ingest", "/v1/reports/compliance"),
        params={"period": period, "format": "csv"},
        headers=api.headers("CQ-SUPERVISOR", "reports:read"),
    )
    assert report.status_code == 200, report.text
    _assert_neutralised(csv_cells(report.content))


def _assert_neutralised(lines: list[list[str]]) -> None:
    for line in lines:
        for cell in line:
            assert not cell.startswith(FORMULA_LEADS), f"formula reaches the CSV: {cell!r}"


def test_ndjson_lines_with_hostile_json_are_rejected_row_by_row(
    api: Api, register: Callable[[], str]
) -> None:
    word = unique_word()
    uscc = register()

    def line(source_id: str, **data: Any) -> str:
        record = dict(zip(LISTING_COLUMNS, listing_row(source_id, uscc), strict=True))
        body: dict[str, Any] = {k: record[k] for k in ("source_id", "uscc", "enterprise_name")}
        body |= {"category": LISTING, "occurred_on": "2025-07-01"}
        body["data"] = {k: record[k] for k in LISTING_COLUMNS[3:]} | data
        return json.dumps(body, ensure_ascii=True)

    good = line(f"{word}-ok")
    lines = [
        good,
        line(f"{word}-nul", reason="原因\x00"),
        line(f"{word}-sur", reason="原因\ud800"),
        line(f"{word}-key", **{"键\ud800": "值"}),
        good.replace('"source_id": ', f'"source_id": "{word}-dup", "source_id": ', 1),
        "[" * 100_000 + "]" * 100_000,
        good.replace('"2025-07-01"', "NaN", 1),
        "\x00\x01 not json",
    ]
    content = ("\n".join(lines) + "\n").encode("utf-8")
    response = api.upload("CQ-SAMR", "lines.ndjson", content, category=None)
    assert response.status_code == 202, response.text
    batch = api.finished_batch("CQ-SAMR", response.json()["batch_id"])
    assert (batch["status"], batch["accepted"], batch["rejected"]) == ("done", 1, 7), batch
    codes = {e["row"]: e["code"] for e in batch["errors"]}
    assert codes == {
        2: "control_character",
        3: "unpaired_surrogate",
        4: "unpaired_surrogate",
        5: "duplicate_key",
        6: "invalid_json",
        7: "invalid_json",
        8: "invalid_json",
    }, codes
    errors = api.http.get(
        api.url("ingest", f"/v1/batches/{batch['batch_id']}/errors.csv"),
        headers=api.headers("CQ-SAMR", "records:write"),
    )
    assert errors.status_code == 200 and len(csv_cells(errors.content)) == 8
    eventually(lambda: len(filed(api, uscc)) == 1, timeout=60)


def test_path_like_file_names_are_labels_never_paths(api: Api) -> None:
    """Names as a hostile client sends them: raw bytes in the part's header."""
    content = csv_file([])
    names = {
        "../../etc/passwd": "passwd",
        "..\\..\\windows\\win.ini": "win.ini",
        "C:\\Users\\x\\报表.csv": "报表.csv",
        "/tmp/../../root/.ssh/id_rsa": "id_rsa",
        "重庆\x00x\x1b.csv": "重庆x.csv",
        "%2e%2e%2fx.csv": "%2e%2e%2fx.csv",
        "..": "upload.csv",
        "长" * 300 + ".csv": "长" * 255,
    }
    for given, shown in names.items():
        response = upload_named(api, given.encode(), content)
        assert response.status_code == 202, f"{given!r}: {response.text}"
        batch = api.finished_batch("CQ-SAMR", response.json()["batch_id"])
        assert batch["filename"] == shown, given
        assert batch["status"] == "done"
    # A part header that cannot be parsed at all is a clear 400.
    response = upload_named(api, b"a\rb.csv", content)
    assert problem(response, 400)["code"] == "malformed_body"


def upload_named(api: Api, filename: bytes, content: bytes) -> httpx.Response:
    boundary = "name-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="category"\r\n\r\n{LISTING}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="format"\r\n\r\ncsv\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="'
    ).encode()
    body += filename + b'"\r\nContent-Type: text/csv\r\n\r\n' + content
    body += f"\r\n--{boundary}--\r\n".encode()
    return api.http.post(
        api.url("ingest", "/v1/batches"),
        content=body,
        headers={
            **api.headers("CQ-SAMR", "records:write"),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )


# --- XLSX bombs ----------------------------------------------------------------------------


def test_xlsx_bombs_are_refused_with_memory_bounded(
    api: Api, system: RunningSystem, register: Callable[[], str]
) -> None:
    samr = "CQ-SAMR"
    uscc = register()
    word = unique_word()
    header = sheet_row(1, LISTING_COLUMNS)
    valid = sheet_row(2, listing_row(f"{word}-bomb", uscc))
    mebibyte_of_rows = valid * ((1 << 20) // len(valid))
    ingest_pid = system.pid("ingest")
    peak_before = _peak_rss(ingest_pid)
    batches = api.batches(samr)

    refused_at_upload = {
        # 2 GiB of sheet XML in ~9 MB: refused on the sizes the archive declares.
        "sheet.xlsx": xlsx(
            repeated_member(
                "xl/worksheets/sheet1.xml", SHEET_HEAD + header, mebibyte_of_rows, 2048, SHEET_TAIL
            )
        ),
        # 1 GB of shared strings, which openpyxl would hold in memory.
        "strings.xlsx": xlsx(
            plain_member("xl/worksheets/sheet1.xml", SHEET_HEAD + header + SHEET_TAIL),
            repeated_member(
                "xl/sharedStrings.xml",
                SST_HEAD,
                b"<si><t>aaaaaaaaaa</t></si>" * 40_000,
                1000,
                b"</sst>",
            ),
        ),
        # Entity expansion (billion laughs) in a sheet.
        "laughs.xlsx": xlsx(
            plain_member(
                "xl/worksheets/sheet1.xml",
                LAUGHS + SHEET_HEAD[38:] + sheet_row(1, ["&lol9;"]) + SHEET_TAIL,
            )
        ),
        "not-a-zip.xlsx": b"PK\x03\x04 but not a zip archive at all" * 10,
        "text.xlsx": "业务编号,统一社会信用代码\r\n".encode(),
    }
    for name, content in refused_at_upload.items():
        response = api.upload(samr, name, content)
        body = problem(response, 422)
        assert [e["field"] for e in body["errors"]] == ["file"], name
        assert body["errors"][0]["code"] in ("xlsx_too_large", "malformed_xlsx"), body

    # Row numbers past Excel's last row, after a valid row: the header reads fine, so the
    # upload is accepted; the batch then fails as a whole, having written nothing.
    forged = xlsx(
        plain_member(
            "xl/worksheets/sheet1.xml",
            SHEET_HEAD
            + header
            + sheet_row(2, listing_row(f"{word}-forged", uscc))
            + sheet_row(2_000_000_000, ["x"])
            + SHEET_TAIL,
        )
    )
    response = api.upload(samr, "forged.xlsx", forged)
    assert response.status_code == 202, response.text
    created = {response.json()["batch_id"]}
    batch = api.finished_batch(samr, response.json()["batch_id"])
    assert batch["status"] == "failed" and batch["failure"]["code"] == "too_many_rows", batch
    assert batch["accepted"] == 0

    # A sheet padded to 16,384 columns by its declared dimension reads as it is.
    padded = xlsx(
        plain_member(
            "xl/worksheets/sheet1.xml",
            SHEET_HEAD.replace(b"<sheetData>", b'<dimension ref="A1:XFD1048576"/><sheetData>')
            + header
            + sheet_row(2, listing_row(f"{word}-padded", uscc))
            + SHEET_TAIL,
        )
    )
    response = api.upload(samr, "padded.xlsx", padded)
    assert response.status_code == 202, response.text
    created.add(response.json()["batch_id"])
    batch = api.finished_batch(samr, response.json()["batch_id"])
    assert (batch["status"], batch["accepted"], batch["rejected"]) == ("done", 1, 0), batch

    peak = _peak_rss(ingest_pid)
    growth = peak - peak_before
    print(
        f"\ningest peak RSS {peak / 2**20:.0f} MiB, {growth / 2**20:.0f} MiB more after the bombs"
    )
    assert growth < 256 * 2**20, f"ingest's peak memory grew by {growth / 2**20:.0f} MiB"
    assert new_batches(api, samr, batches) == created, "a refused upload left a batch"
    # Only the padded sheet's row was filed: the failed batch wrote nothing.
    records = eventually(lambda: filed(api, uscc), timeout=60)
    time.sleep(1)
    assert [r["source_id"] for r in filed(api, uscc)] == [f"{word}-padded"], records


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
SHEET_TAIL = b"</sheetData></worksheet>"
SST_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
)
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"]>"
)
_XLSX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
        'package/2006/content-types"><Default Extension="rels" ContentType="application/'
        'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
        'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType='
        '"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
        'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
        "schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
        '" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.'
        'org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships"><sheets><sheet name="数据" sheetId="1" '
        'r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
        'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
        'schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target='
        '"worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.'
        "openxmlformats.org/officeDocument/2006/relationships/sharedStrings"
        '" Target="sharedStrings.xml"/></Relationships>'
    ),
}


@dataclass(frozen=True)
class Member:
    name: str
    deflated: bytes
    crc: int
    size: int


def sheet_row(number: int, values: list[str]) -> bytes:
    cells = "".join(
        f'<c r="{_column(i)}{number}" t="inlineStr"><is><t>{v}</t></is></c>'
        for i, v in enumerate(values)
    )
    return f'<row r="{number}">{cells}</row>'.encode()


def _column(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def plain_member(name: str, content: bytes) -> Member:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return Member(
        name, packer.compress(content) + packer.flush(), zlib.crc32(content), len(content)
    )


def repeated_member(name: str, head: bytes, block: bytes, times: int, tail: bytes) -> Member:
    """head + block * times + tail, deflated without deflating it all: the block is
    deflated once and repeated (each piece ends on a full flush, so pieces chain)."""

    def piece(data: bytes) -> bytes:
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        return packer.compress(data) + packer.flush(zlib.Z_FULL_FLUSH)

    crc = zlib.crc32(head)
    for _ in range(times):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail, crc)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    end = packer.compress(tail) + packer.flush()
    deflated = piece(head) + piece(block) * times + end
    return Member(name, deflated, crc, len(head) + len(block) * times + len(tail))


def xlsx(sheet: Member, strings: Member | None = None) -> bytes:
    """A workbook (zip) written by hand, so that a member may be any size."""
    members = [plain_member(n, c.encode()) for n, c in _XLSX_PARTS.items()]
    members += [sheet, strings or plain_member("xl/sharedStrings.xml", SST_HEAD + b"</sst>")]
    out = io.BytesIO()
    directory = []
    for member in members:
        name = member.name.encode()
        offset = out.tell()
        fields = (20, 0, 8, 0, 0x21, member.crc, len(member.deflated), member.size, len(name))
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields, 0) + name + member.deflated)
        directory.append(
            struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, *fields, 0, 0, 0, 0, 0, offset) + name
        )
    start = out.tell()
    for entry in directory:
        out.write(entry)
    count = len(directory)
    out.write(
        struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, out.tell() - start, start, 0)
    )
    return out.getvalue()
