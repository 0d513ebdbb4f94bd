"""What ingest asks the ledger (over its REST API, with the service token):
the enterprise behind a USCC (to compare names), the USCC behind an old
registration number, and the records it could not match to an enterprise.

Submissions never wait on a ledger that is down: after a failure the ledger is
left alone for a few seconds and every answer is "unknown". Answers are cached
briefly so a batch naming the same enterprise many times asks once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar

import httpx

logger = logging.getLogger("ecips.ingest.ledger")

_V = TypeVar("_V")
_MISSING = object()


@dataclass(frozen=True, slots=True)
class KnownEnterprise:
    uscc: str
    name: str
    former_names: tuple[tuple[str, date | None], ...]
    status_code: str | None


@dataclass(frozen=True, slots=True)
class UnmatchedCounts:
    """Unmatched records per department (absent: none); None when the ledger cannot say."""

    by_department: dict[str, int] | None
    note: str | None = None


def name_token(name: str) -> str:
    """Names compare without width or spaces: ``（集团）`` = ``(集团)``."""
    return "".join(unicodedata.normalize("NFKC", name).split())


class _TtlCache(Generic[_V]):
    def __init__(self, ttl: float, max_entries: int) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._items: OrderedDict[str, tuple[float, _V]] = OrderedDict()

    def get(self, key: str) -> _V | object:
        found = self._items.get(key)
        if found is None or found[0] < time.monotonic():
            return _MISSING
        return found[1]

    def put(self, key: str, value: _V) -> None:
        self._items[key] = (time.monotonic() + self._ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)


# The most identifiers of each kind the ledger answers in one lookup.
LOOKUP_LIMIT = 1000


class LedgerDirectory:
    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        token: str | None,
        *,
        cache_seconds: float = 60.0,
        timeout_seconds: float = 2.0,
        pause_after_failure_seconds: float = 5.0,
        concurrency: int = 8,
        max_entries: int = 50_000,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout_seconds
        self._pause = pause_after_failure_seconds
        self._down_until = 0.0
        self._down = False
        self._limit = asyncio.Semaphore(concurrency)
        self._enterprises: _TtlCache[KnownEnterprise | None] = _TtlCache(cache_seconds, max_entries)
        self._numbers: _TtlCache[str | None] = _TtlCache(cache_seconds, max_entries)

    @property
    def enabled(self) -> bool:
        return self._token is not None

    async def _get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response | None:
        """The ledger's answer, or None when it cannot be asked right now."""
        return await self._ask("GET", path, params=params)

    async def _ask(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> httpx.Response | None:
        if self._token is None:
            return None
        async with self._limit:
            # Checked after the wait: lookups queued behind a failure give up at once.
            if time.monotonic() < self._down_until:
                return None
            try:
                response = await self._http.request(
                    method,
                    f"{self._base}{path}",
                    params=params,
                    json=body,
                    headers={"Authorization": f"Bearer {self._token}"},
                    timeout=self._timeout,
                )
            except httpx.HTTPError as exc:
                self._pause_asking(f"unreachable ({exc})")
                return None
        if response.status_code >= 500 or response.status_code in (401, 403, 429):
            self._pause_asking(f"answered {response.status_code} on {path}")
            return None
        if self._down:
            self._down = False
            logger.info("ledger answers again")
        return response

    def _pause_asking(self, why: str) -> None:
        now = time.monotonic()
        if not self._down:
            logger.warning("ledger %s; accepting records without asking it", why)
        elif now >= self._down_until:
            logger.debug("ledger still %s", why)
        self._down = True
        self._down_until = now + self._pause

    async def prefetch(self, usccs: Collection[str], numbers: Collection[str]) -> None:
        """Ask about many enterprises in one request per thousand, so that the
        checks that follow are answered from the cache. Best effort: whatever
        this does not learn is asked one by one as before."""
        wanted = [u for u in dict.fromkeys(usccs) if self._enterprises.get(u) is _MISSING]
        old = [n for n in dict.fromkeys(numbers) if self._numbers.get(n) is _MISSING]
        for start in range(0, max(len(wanted), len(old)), LOOKUP_LIMIT):
            some_usccs = wanted[start : start + LOOKUP_LIMIT]
            some_numbers = old[start : start + LOOKUP_LIMIT]
            response = await self._ask(
                "POST",
                "/v1/enterprises/lookup",
                body={"usccs": some_usccs, "registration_numbers": some_numbers},
            )
            if response is None or response.status_code != 200:
                return
            answer = response.json()
            items = answer.get("items") if isinstance(answer, dict) else None
            mapped = answer.get("registration_numbers") if isinstance(answer, dict) else None
            if not isinstance(items, list) or not isinstance(mapped, dict):
                return
            found = {
                item["uscc"]: _enterprise(item)
                for item in items
                if isinstance(item, dict) and isinstance(item.get("uscc"), str)
            }
            for uscc in some_usccs:
                self._enterprises.put(uscc, found.get(uscc))
            for number in some_numbers:
                value = mapped.get(number)
                self._numbers.put(number, value if isinstance(value, str) else None)

    async def enterprise(self, uscc: str) -> KnownEnterprise | None:
        """The enterprise if the ledger knows it; None if it does not or cannot say."""
        cached = self._enterprises.get(uscc)
        if cached is not _MISSING:
            return cached  # type: ignore[return-value]
        response = await self._get(f"/v1/enterprises/{uscc}")
        if response is None:
            return None
        known = _enterprise(response.json()) if response.status_code == 200 else None
        if response.status_code in (200, 404):
            self._enterprises.put(uscc, known)
        return known

    async def uscc_for_registration_number(self, number: str) -> str | None:
        cached = self._numbers.get(number)
        if cached is not _MISSING:
            return cached  # type: ignore[return-value]
        response = await self._get("/v1/enterprises", {"registration_number": number})
        if response is None:
            return None
        uscc: str | None = None
        if response.status_code == 200:
            body = response.json()
            items = body.get("items") if isinstance(body, dict) else None
            if isinstance(items, list) and items and isinstance(items[0], dict):
                uscc = items[0].get("uscc")
            elif isinstance(body, dict) and isinstance(body.get("uscc"), str):
                uscc = body["uscc"]
        if response.status_code in (200, 404):
            self._numbers.put(number, uscc)
        return uscc

    async def unmatched(self, period: str) -> UnmatchedCounts:
        """Records per department that the ledger holds unmatched for the month.

        One question: the ledger's answer carries ``counts`` per department.
        """
        if self._token is None:
            return UnmatchedCounts(None, "ingest has no service token to ask the ledger")
        response = await self._get("/v1/unmatched", {"occurred_period": period, "limit": "1"})
        if response is None:
            return UnmatchedCounts(None, "the ledger could not be reached")
        if response.status_code != 200:
            return UnmatchedCounts(
                None, f"the ledger answered {response.status_code} to GET /v1/unmatched"
            )
        body = response.json()
        counts = body.get("counts") if isinstance(body, dict) else None
        if not isinstance(counts, dict) or not all(isinstance(n, int) for n in counts.values()):
            return UnmatchedCounts(
                None, "the ledger's answer to GET /v1/unmatched has no counts per department"
            )
        return UnmatchedCounts(counts)


def _enterprise(body: Any) -> KnownEnterprise | None:
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        return None
    if body.get("registered") is False:
        # Known only from records that name it: its name is hearsay, not the register's.
        return None
    former: list[tuple[str, date | None]] = []
    for item in body.get("former_names") or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            until = item.get("until")
            former.append((item["name"], date.fromisoformat(until) if until else None))
    return KnownEnterprise(
        uscc=str(body.get("uscc", "")),
        name=body["name"],
        former_names=tuple(former),
        status_code=body.get("status_code"),
    )
