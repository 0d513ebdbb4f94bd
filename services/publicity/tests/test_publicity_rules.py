"""Pure rules: masking personal data, the rate limiter, the publication catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecips_common.public_http import TokenBucketLimiter
from ecips_publicity.catalogue import CATALOGUE_FILE, CatalogueError, load_catalogue
from ecips_publicity.masking import mask_personal_data, mask_text
from ecips_publicity.repository import escape_like
from ecips_publicity.settings import CATALOGUE_DIR


def test_identity_number_keys_are_dropped_at_any_depth() -> None:
    data = {
        "legal_representative": "王小明",
        "id_number": "110101199003071234",
        "legal_representative_id_number": "110101199003071234",
        "shareholders": [{"name": "李四", "shareholder_id_number": "x", "ID_NUMBER": "y"}],
        "id_number_type": "身份证",  # a type, not a number: kept
    }
    assert mask_personal_data(data) == {
        "legal_representative": "王小明",
        "shareholders": [{"name": "李四"}],
        "id_number_type": "身份证",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("110101199003071234", "110*************34"),
        ("证件 50010320001231002x 有效", "证件 500*************2x 有效"),
        ("13812345678", "138****5678"),
        ("电话：138-1234-5678。", "电话：138****5678。"),
        ("+8615912345678", "+86159****5678"),
        # Not personal: a USCC, a fine in yuan, a landline, a longer number.
        ("91500103MA5U7A1B2C", "91500103MA5U7A1B2C"),
        ("罚款 12000000 元", "罚款 12000000 元"),
        ("023-63891234", "023-63891234"),
        ("1101011990030712345", "1101011990030712345"),
    ],
)
def test_numbers_in_text_are_masked(text: str, expected: str) -> None:
    assert mask_text(text) == expected


def test_non_text_values_pass_unchanged() -> None:
    assert mask_personal_data({"amount": 3.5, "ok": True, "none": None}) == {
        "amount": 3.5,
        "ok": True,
        "none": None,
    }


def test_like_wildcards_are_escaped() -> None:
    assert escape_like(r"50%_a\b") == r"50\%\_a\\b"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    assert limiter.acquire("b") == 0.0  # clients are independent
    clock.now += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0


def test_token_bucket_forgets_idle_clients_when_full() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate=1.0, burst=2, max_clients=2, clock=clock)
    limiter.acquire("a")
    limiter.acquire("b")
    clock.now += 10  # both refilled: forgetting them changes nothing
    limiter.acquire("c")
    assert limiter.acquire("c") == 0.0
    assert limiter.acquire("c") > 0


def test_shipped_catalogue_is_valid() -> None:
    catalogue = load_catalogue(CATALOGUE_DIR)
    dated = catalogue.dated_publication
    assert str(dated.since) == "2014-10-01"
    assert set(dated.categories) == {
        "administrative_license",
        "administrative_penalty",
        "commendation",
    }
    assert catalogue.section_names["administrative_penalty"] == "行政处罚"


def test_catalogue_naming_an_unknown_category_stops_startup(tmp_path: Path) -> None:
    text = (CATALOGUE_DIR / CATALOGUE_FILE).read_text("utf-8")
    (tmp_path / CATALOGUE_FILE).write_text(
        text.replace("    - commendation\n", "    - commendations\n"), "utf-8"
    )
    with pytest.raises(CatalogueError, match="commendations"):
        load_catalogue(tmp_path)
