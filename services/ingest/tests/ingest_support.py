"""Helpers for ingest's tests: identifiers, a private database per module, a
stand-in ledger served over real HTTP, files to upload and bounded polling."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import httpx
import uvicorn
from fastapi import Body, FastAPI, Query, Response
from openpyxl import Workbook

from ecips.runtime.ports import free_port
from ecips.runtime.postgres import drop_database, ensure_database, to_asyncpg_dsn, with_database
from ecips.testkit import SigningKeys, service_settings_kwargs
from ecips_common.identifiers import USCC_ALPHABET, make_registration_number, make_uscc
from ecips_ingest.settings import IngestSettings

T = TypeVar("T")
# Nothing listens here: the ledger is "down".
UNREACHABLE = "http://127.0.0.1:9"


def random_uscc(division: str = "500103") -> str:
    return make_uscc(org_body="".join(random.choices(USCC_ALPHABET, k=8)), division=division)


def random_registration_number(division: str = "500103") -> str:
    return make_registration_number(division + "".join(random.choices("0123456789", k=8)))


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(5)}"


@asynccontextmanager
async def private_database(database_url: str) -> AsyncIterator[str]:
    """A database of its own on the session's server: no other app's batch worker,
    and no other test's records, in it."""
    dsn = to_asyncpg_dsn(database_url)
    name = f"ecips_ingest_{secrets.token_hex(5)}"
    await asyncio.to_thread(ensure_database, dsn, name)
    try:
        yield with_database(database_url, name)
    finally:
        await asyncio.to_thread(drop_database, dsn, name)


def settings(
    database_url: str, kafka_bootstrap: str, keys: SigningKeys, **extra: Any
) -> IngestSettings:
    values: dict[str, Any] = {
        "ledger_url": UNREACHABLE,
        "batch_poll_seconds": 0.2,
        **extra,
    }
    return IngestSettings(
        **service_settings_kwargs(
            database_url=database_url, kafka_bootstrap=kafka_bootstrap, keys=keys, **values
        )
    )


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, within: float = 30.0, what: str = "condition"
) -> T:
    deadline = time.monotonic() + within
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not met within {within} s; last: {last!r}")


async def finished_batch(
    client: httpx.AsyncClient, batch_id: str, headers: dict[str, str], within: float = 60.0
) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get(f"/v1/batches/{batch_id}", headers=headers)).json()
        return body if body["status"] in ("done", "failed") else None

    return await eventually(done, within=within, what=f"batch {batch_id} finished")


def csv_bytes(rows: Iterable[Iterable[Any]], encoding: str = "utf-8-sig") -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows: Iterable[Iterable[Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def read_csv(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


class StubLedger:
    """The ledger's read API as ingest uses it, served over real HTTP on a free port:
    enterprises by USCC (with former names), the registration-number lookup and the
    unmatched records per department and month."""

    def __init__(self) -> None:
        self.enterprises: dict[str, dict[str, Any]] = {}
        self.numbers: dict[str, str] = {}
        self.unmatched: dict[tuple[str, str], int] = {}
        self.offer_unmatched = True
        self.offer_lookup = True
        self.calls: list[str] = []
        self.port = free_port()
        self.app = self._build()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def know(self, uscc: str, name: str, former: Iterable[tuple[str, str]] = ()) -> None:
        self.enterprises[uscc] = {
            "uscc": uscc,
            "name": name,
            "former_names": [{"name": n, "until": until} for n, until in former],
            "registered": True,
            "status_code": "active",
        }

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/enterprises/{uscc}")
        async def enterprise(uscc: str) -> Response:
            self.calls.append(f"enterprise {uscc}")
            found = self.enterprises.get(uscc)
            if found is None:
                return Response(status_code=404)
            return _json(found)

        @app.get("/v1/enterprises")
        async def by_number(registration_number: str = Query()) -> Response:
            self.calls.append(f"number {registration_number}")
            uscc = self.numbers.get(registration_number)
            items = [self.enterprises.get(uscc, {"uscc": uscc})] if uscc else []
            return _json({"items": items})

        @app.post("/v1/enterprises/lookup")
        async def lookup(body: Annotated[dict[str, list[str]], Body()]) -> Response:
            # As the ledger answers: the known enterprises and the numbers that map.
            usccs, numbers = body.get("usccs", []), body.get("registration_numbers", [])
            self.calls.append(f"lookup {len(usccs)} usccs, {len(numbers)} numbers")
            if not self.offer_lookup:
                return Response(status_code=404)
            return _json(
                {
                    "items": [self.enterprises[u] for u in usccs if u in self.enterprises],
                    "registration_numbers": {
                        n: self.numbers[n] for n in numbers if n in self.numbers
                    },
                }
            )

        @app.get("/v1/unmatched")
        async def unmatched(period: str = Query(alias="occurred_period")) -> Response:
            # As the ledger answers: one page of items, and counts per department
            # (by the month the records are about, as the report counts them).
            self.calls.append(f"unmatched {period}")
            if not self.offer_unmatched:
                return Response(status_code=404)
            counts = {d: n for (d, p), n in self.unmatched.items() if p == period}
            return _json({"items": [], "counts": counts, "total": sum(counts.values())})

        return app

    async def start(self) -> None:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        await eventually(self._started, within=10, what="stub ledger started")

    async def _started(self) -> bool:
        return bool(self._server and self._server.started)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task


def _json(body: Any) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/json")
