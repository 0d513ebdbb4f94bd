"""The portal in headless Chromium against the service in a real uvicorn
server: search, open a profile, switch tabs, print the credit report, text
that looks like HTML stays text, and the page works from another origin.

Screenshots go to test-artifacts/screenshots/ for review.
"""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect, sync_playwright
from publicity_support import (
    Clock,
    cloud_event,
    enterprise_changed,
    new_uscc,
    publicity_settings,
    record_filed,
)

from ecips.runtime.ports import free_port
from ecips.testkit import new_signing_keys, service_settings_kwargs
from ecips_common.contracts import EnterpriseFlags, FormerName, MeasureRef, PunishmentTriggered
from ecips_common.events import EventPayload
from ecips_ingest.main import create_app as create_ingest_app
from ecips_ingest.settings import IngestSettings
from ecips_publicity.api.portal import STATIC_DIR
from ecips_publicity.main import create_app

T = TypeVar("T")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"
TODAY = date(2026, 6, 15)
XSS_NAME = "<script>alert(1)</script>重庆渝信测试有限公司"
XSS_FIELD = '<img src=x onerror="alert(2)">'


class Server:
    """A uvicorn server in a thread of its own, on a free port."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.server.serve())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop (where its database pool lives)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class StaticPortal(http.server.SimpleHTTPRequestHandler):
    """The portal's files alone, as a CDN would serve them: another origin."""

    def translate_path(self, path: str) -> str:
        clean = path.split("?", 1)[0].split("#", 1)[0]
        if clean in ("", "/"):
            return str(STATIC_DIR / "index.html")
        return str(STATIC_DIR / clean.removeprefix("/static/"))

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Portal:
    url: str
    static_url: str
    uscc: str
    other: str
    xss: str


def seed(app: FastAPI, server: Server) -> Portal:
    main, other, xss = new_uscc("500103"), new_uscc("500112"), new_uscc("500106")
    name = "重庆渝信建材贸易有限公司"
    events: list[EventPayload] = [
        enterprise_changed(
            main,
            3,
            name,
            legal_representative="李四",
            registered_capital="200万元人民币",
            established_on=date(2015, 2, 14),
            former_names=[FormerName(name="重庆渝信建材有限公司", until=date(2019, 5, 1))],
            flags=EnterpriseFlags(
                abnormal_operation=True,
                abnormal_operation_since=date(2026, 1, 5),
                abnormal_operation_reason="通过登记的住所或者经营场所无法联系",
                serious_illegal=True,
                serious_illegal_since=date(2025, 9, 1),
                serious_illegal_reason="提交虚假材料取得登记",
            ),
        ),
        enterprise_changed(other, 1, "重庆渝信物流有限公司", legal_representative="王五"),
        enterprise_changed(xss, 1, XSS_NAME, legal_representative="赵六"),
        record_filed(
            main,
            "administrative_penalty",
            occurred_on=date(2025, 8, 1),
            period_days=1095,
            source_id="渝市监罚〔2025〕77号",
            data={
                "decision_number": "渝市监罚〔2025〕77号",
                "authority": "重庆市市场监督管理局",
                "violation_type": "产品质量",
                "facts": "销售不合格建筑材料，经抽样检验不合格",
                "penalty_kinds": ["警告", "罚款"],
                "content": "警告，并处罚款人民币叁万元",
                "fine": {"value": "30000", "currency": "CNY"},
                "decided_on": "2025-08-01",
                "legal_representative_id_number": "110101199003071234",
            },
        ),
        record_filed(
            main,
            "administrative_license",
            occurred_on=date(2024, 3, 1),
            source_id="渝建许〔2024〕12号",
            department="CQ-HURD",
            data={
                "decision_number": "渝建许〔2024〕12号",
                "license_kind": "普通",
                "license_name": "建筑业企业资质证书",
                "license_number": "D350123456",
                "content": "建筑工程施工总承包叁级",
                "authority": "重庆市住房和城乡建设委员会",
                "decided_on": "2024-03-01",
                "valid_from": "2024-03-01",
                "valid_to": "2029-02-28",
                "note": XSS_FIELD,
            },
        ),
        record_filed(
            main,
            "abnormal_operation_listing",
            occurred_on=date(2024, 7, 1),
            source_id="渝中市监异列〔2024〕9号",
            data={
                "decision_number": "渝中市监异列〔2024〕9号",
                "authority": "重庆市渝中区市场监督管理局",
                "decided_on": "2024-07-01",
                "reason": "未按规定报送2023年度年度报告",
            },
        ),
        record_filed(
            main,
            "abnormal_operation_removal",
            occurred_on=date(2024, 9, 10),
            source_id="渝中市监异移〔2024〕3号",
            data={
                "decision_number": "渝中市监异移〔2024〕3号",
                "authority": "重庆市渝中区市场监督管理局",
                "decided_on": "2024-09-10",
                "reason": "已补报年度报告并公示",
                "listing_decision_number": "渝中市监异列〔2024〕9号",
            },
        ),
        record_filed(
            main,
            "abnormal_operation_listing",
            occurred_on=date(2026, 1, 5),
            source_id="渝中市监异列〔2026〕1号",
            data={
                "decision_number": "渝中市监异列〔2026〕1号",
                "authority": "重庆市渝中区市场监督管理局",
                "decided_on": "2026-01-05",
                "reason": "通过登记的住所或者经营场所无法联系",
            },
        ),
        record_filed(
            main,
            "serious_illegal_listing",
            occurred_on=date(2025, 9, 1),
            source_id="渝市监严列〔2025〕8号",
            data={
                "decision_number": "渝市监严列〔2025〕8号",
                "authority": "重庆市市场监督管理局",
                "decided_on": "2025-09-01",
                "reason": "提交虚假材料取得登记",
            },
        ),
        record_filed(
            main,
            "annual_report",
            occurred_on=date(2025, 6, 20),
            source_id="2024年度报告",
            data={
                "report_year": 2024,
                "submitted_on": "2025-06-20",
                "employees": 36,
                "contact_phone": "13812345678",
            },
        ),
        record_filed(
            main,
            "trademark_registration",
            occurred_on=date(2022, 4, 7),
            source_id="第56789012号",
            department="CQ-IP",
            data={
                "registration_number": "56789012",
                "mark": "渝信",
                "classes": [19, 35],
                "registered_on": "2022-04-07",
                "valid_to": "2032-04-06",
            },
        ),
    ]
    measure = PunishmentTriggered(
        uscc=main,
        enterprise_name=name,
        rule_id="serious-illegal-procurement",
        rule_version=1,
        rule_title="严重违法失信企业联合惩戒",
        kind="punishment",
        measures=[
            MeasureRef(
                measure="procurement_ban",
                title="限制参与政府采购活动",
                scenarios=["government_procurement"],
                department="CQ-FIN",
                legal_basis="国发〔2016〕33号",
            ),
            MeasureRef(
                measure="bidding_ban",
                title="限制参与工程建设项目招标投标",
                scenarios=["public_bidding"],
                department="CQ-HURD",
                legal_basis="国发〔2016〕33号",
            ),
        ],
        legal_basis="《国务院关于建立完善守信联合激励和失信联合惩戒制度的指导意见》（国发〔2016〕33号）",
        since=date(2025, 9, 1),
        until=date(2028, 8, 31),
        catalogue_version="test",
        decided_at=datetime(2025, 9, 1, tzinfo=UTC),
    )
    processor = app.state.service.processor
    batch = [cloud_event(p, str(getattr(p, "uscc", ""))) for p in events]
    assert set(server.call(processor.process_batch(batch))) == {"applied"}
    assert server.call(processor.process(cloud_event(measure, main, "/ecips/rules"))) == "applied"
    return Portal(server.url, "", main, other, xss)


@pytest.fixture(scope="module")
def portal(database_url: str, kafka_bootstrap: str) -> Iterator[Portal]:
    if not CHROMIUM.exists():
        pytest.fail(
            "Chromium is missing: run `make browser-deps` (Debian chromium, fonts-noto-cjk)"
        )
    keys = new_signing_keys()
    ingest = Server(
        create_ingest_app(
            IngestSettings(
                **service_settings_kwargs(
                    database_url=database_url, kafka_bootstrap=kafka_bootstrap, keys=keys
                ),
                batch_workers=0,
            )
        )
    )
    ingest.start()
    settings = publicity_settings(
        database_url, kafka_bootstrap, ingest_url=ingest.url, search_result_cap=50
    )
    app = create_app(settings, today=Clock(TODAY))
    server = Server(app)
    server.start()
    static = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), StaticPortal)
    static_thread = threading.Thread(target=static.serve_forever, daemon=True)
    static_thread.start()
    try:
        seeded = seed(app, server)
        seeded.static_url = f"http://127.0.0.1:{static.server_port}"
        # The department names come from ingest's catalogue in the background.
        deadline = time.monotonic() + 30
        while not app.state.service.extras["directory"].current.loaded:
            assert time.monotonic() < deadline, "ingest's catalogue was not read"
            time.sleep(0.1)
        yield seeded
    finally:
        static.shutdown()
        server.stop()
        ingest.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert dialogs == [], f"a script ran from data: {dialogs}"
    assert errors == [], errors


def shoot(page: Page, name: str, *, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=full_page)


def test_search_profile_tabs_and_printable_report(portal: Portal, page: Page) -> None:
    page.goto(portal.url + "/")
    expect(page).to_have_title("企业信用信息公示系统（重庆）")
    expect(page.locator("#stats")).to_contain_text("已公示企业")
    shoot(page, "01-home.png")

    page.fill("#search-input", "渝信")
    page.click("#search-button")
    results = page.locator("#result-list > li")
    expect(results).to_have_count(3)
    expect(page.locator("#results-summary")).to_contain_text("共找到 3 户企业")
    first = results.filter(has_text="重庆渝信建材贸易有限公司")
    expect(first.locator(".badge", has_text="严重违法失信")).to_be_visible()
    expect(first.locator(".badge", has_text="经营异常")).to_be_visible()
    expect(first.locator("mark").first).to_have_text("渝信")
    # The enterprise named like a script shows its name as text and runs nothing.
    expect(page.get_by_text(XSS_NAME)).to_be_visible()
    assert page.locator("#result-list script").count() == 0
    shoot(page, "02-results.png", full_page=True)

    first.locator("button.name").click()
    expect(page.locator("#enterprise-name")).to_have_text("重庆渝信建材贸易有限公司")
    expect(page.locator("#enterprise-alert")).to_contain_text("严重违法失信名单")
    expect(page.locator(".facts")).to_contain_text(portal.uscc)
    expect(page.locator(".facts")).to_contain_text("重庆渝信建材有限公司（至 2019-05-01）")
    shoot(page, "03-enterprise.png", full_page=True)

    page.locator("#tab-list button", has_text="行政处罚").click()
    penalty = page.locator("#tab-panel .records > li").first
    expect(penalty.locator(".record-title")).to_have_text("渝市监罚〔2025〕77号")
    expect(penalty).to_contain_text("来源部门：重庆市市场监督管理局")
    expect(penalty).to_contain_text("30,000 元")
    expect(penalty).to_contain_text("公示至：2028-07-31")
    expect(page.locator("#tab-panel")).not_to_contain_text("110101199003071234")
    shoot(page, "04-penalties.png", full_page=True)

    page.locator("#tab-list button", has_text="行政许可").click()
    licence = page.locator("#tab-panel .records > li").first
    expect(licence).to_contain_text(XSS_FIELD)  # a field that looks like HTML is text
    expect(licence).to_contain_text("来源部门：重庆市住房和城乡建设委员会")

    page.locator("#tab-list button", has_text="经营异常名录").click()
    rows = page.locator("#tab-panel table.list-table tr")
    expect(rows).to_have_count(3)  # header + two listings
    expect(rows.nth(2)).to_contain_text("已补报年度报告并公示")
    shoot(page, "05-abnormal-list.png", full_page=True)

    page.locator("#tab-list button", has_text="联合惩戒措施").click()
    expect(page.locator("#tab-panel .measures")).to_contain_text("限制参与政府采购活动")
    expect(page.locator("#tab-panel .measures")).to_contain_text("重庆市财政局")

    page.click("#report-link")
    expect(page.locator("#report-title")).to_have_text("企业信用报告")
    expect(page.locator("#report-body")).to_contain_text("渝市监罚〔2025〕77号")
    expect(page.locator("#report-body")).to_contain_text("商标注册")
    expect(page.locator("#report-body")).to_contain_text("限制参与工程建设项目招标投标")
    page.emulate_media(media="print")
    assert page.locator(".masthead").evaluate("e => getComputedStyle(e).display") == "none"
    assert page.locator("#print-button").is_hidden()
    shoot(page, "06-report-print.png", full_page=True)
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    page.emulate_media(media="screen")


def test_former_names_filters_and_lists(portal: Portal, page: Page) -> None:
    page.goto(portal.url + "/#q=" + "渝信建材有限公司")
    hit = page.locator("#result-list > li").first
    expect(hit.locator(".former")).to_contain_text("曾用名：重庆渝信建材有限公司")

    page.goto(portal.url + "/#list=serious_illegal")
    expect(page.locator("#result-list > li")).to_have_count(1)
    expect(page.locator("#result-list")).to_contain_text("重庆渝信建材贸易有限公司")

    page.goto(portal.url + "/")
    page.click("#filters summary")
    page.select_option("#filter-district", "500112")
    page.fill("#search-input", "渝信")
    page.click("#search-button")
    expect(page.locator("#result-list > li")).to_have_count(1)
    expect(page.locator("#result-list")).to_contain_text("重庆渝信物流有限公司")

    page.fill("#search-input", "渝")
    page.click("#search-button")
    expect(page.locator("#message")).to_contain_text("至少输入两个字")


def test_the_portal_works_from_another_origin(portal: Portal, page: Page) -> None:
    page.goto(f"{portal.static_url}/?api={portal.url}#q=%E6%B8%9D%E4%BF%A1")
    expect(page.locator("#result-list > li")).to_have_count(3)
    page.locator("#result-list button.name", has_text="重庆渝信物流有限公司").click()
    expect(page.locator("#enterprise-name")).to_have_text("重庆渝信物流有限公司")
    shoot(page, "07-other-origin.png")
    # And the API answered with CORS headers for that origin.
    answer = httpx.get(
        f"{portal.url}/v1/search", params={"q": "渝信"}, headers={"Origin": portal.static_url}
    )
    assert answer.headers["access-control-allow-origin"] == "*"


def test_an_unknown_enterprise_shows_a_message(portal: Portal, page: Page) -> None:
    page.goto(portal.url + "/#e=" + new_uscc())
    expect(page.locator("#message")).to_contain_text("未找到该企业")
