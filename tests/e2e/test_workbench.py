"""The department workbench (ingest's /workbench) in headless Chromium against the
whole running system: sign in and out; enter a record with mistakes, fix it, submit,
correct and revoke it; upload a batch with bad rows and the fixed rows again; claim a
double-notification task and report back, with an overdue one highlighted and the
applicant's notice opened; the compliance dashboards with chart and CSV. Text that
looks like HTML stays text everywhere.

Screenshots go to ``$ECIPS_SCREENSHOT_DIR`` (default: a pytest temporary directory).
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from playwright.sync_api import Browser, Dialog, FilePayload, Page, expect, sync_playwright

from ecips_common.auth import issue_token
from ecips_common.identifiers import (
    USCC_ALPHABET,
    IdentifierError,
    make_registration_number,
    make_uscc,
    validate_registration_number,
    validate_uscc,
)
from tests.system import RunningSystem, eventually, new_uscc

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--lang=zh-CN",
]
# Would run (and leave a trace) if any text were ever inserted as markup.
XSS = '<img src=x onerror="window.__xss.push(1)">'
CHINA = ZoneInfo("Asia/Shanghai")


# --- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("ECIPS_SCREENSHOT_DIR")
    folder = Path(configured) if configured else tmp_path_factory.mktemp("workbench-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        accept_downloads=True,
    )
    context.add_init_script("window.__xss = [];")
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield page
    ran = page.evaluate("window.__xss.length")
    context.close()
    assert errors == [], errors
    assert dialogs == [], f"a script ran from data: {dialogs}"
    assert ran == 0, "markup from data was run"


def token(system: RunningSystem, department: str, *scopes: str) -> str:
    """Signed with the data directory's key, as `ecips token issue` does (in-process:
    starting the CLI for each token would take seconds)."""
    key = (system.data_dir / "keys" / "signing-key.pem").read_bytes()
    return issue_token(key, department=department, scopes=scopes, ttl_seconds=3600)


def headers(system: RunningSystem, department: str, *scopes: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(system, department, *scopes)}"}


def shoot(page: Page, folder: Path, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(folder / f"workbench-{name}.png"), full_page=full_page)


def sign_in(page: Page, system: RunningSystem, bearer: str) -> None:
    page.goto(f"{system.url('ingest')}/workbench/")
    page.get_by_label("访问令牌").fill(bearer)
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page.locator("#workbench")).to_be_visible()


def no_markup_from_data(page: Page) -> None:
    assert page.locator("img[src=x]").count() == 0


def download(page: Page, locator: Any) -> bytes:
    with page.expect_download() as info:
        locator.click()
    path = info.value.path()
    return Path(path).read_bytes()


def description(page: Page, field: Any) -> str:
    """What a screen reader reads after the field's name: its help and its error."""
    ids = (field.get_attribute("aria-describedby") or "").split()
    return " ".join(page.locator(f"#{i}").text_content() or "" for i in ids)


def china_today() -> str:
    return datetime.now(CHINA).date().isoformat()


# --- sign-in --------------------------------------------------------------------


def test_sign_in_shows_department_and_scopes_and_sign_out_forgets_the_token(
    system: RunningSystem, page: Page, screenshots: Path
) -> None:
    page.goto(f"{system.url('ingest')}/workbench/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    field = page.get_by_label("访问令牌")
    field.fill("not-a-token")
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page.locator("#token-error")).to_contain_text("令牌无效")
    expect(field).to_have_attribute("aria-invalid", "true")

    key = (system.data_dir / "keys" / "signing-key.pem").read_bytes()
    expired = issue_token(
        key, department="CQ-SAMR", scopes=["records:write"], ttl_seconds=60, now=1_000_000
    )
    field.fill(f"Bearer {expired}")
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page.locator("#token-error")).to_contain_text("令牌已过期")
    shoot(page, screenshots, "01-sign-in-expired")

    bearer = token(system, "CQ-SAMR", "records:write", "tasks:handle")
    sign_in(page, system, bearer)
    expect(page.locator("#identity-department")).to_have_text("重庆市市场监督管理局 · CQ-SAMR")
    expect(page.locator("#who-scopes")).to_contain_text("records:write")
    expect(page.locator("#who-scopes")).to_contain_text("办理本部门的双告知和联合惩戒任务")
    assert page.evaluate("sessionStorage.getItem('ecips.workbench.token')") == bearer
    assert page.evaluate("localStorage.length") == 0
    # Tabs by keyboard: the arrow keys move between them, as the tabs pattern says.
    entry = page.get_by_role("tab", name="在线录入")
    expect(entry).to_have_attribute("aria-selected", "true")
    entry.focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="批量上传")).to_be_focused()
    expect(page.get_by_role("tab", name="批量上传")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-batch")).to_be_visible()
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name="报送统计")).to_be_focused()
    page.keyboard.press("Home")
    expect(entry).to_be_focused()
    shoot(page, screenshots, "02-signed-in")

    page.get_by_role("button", name="退出登录").click()
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#flash")).to_contain_text("已退出登录")
    assert page.evaluate("Object.keys(sessionStorage).length") == 0
    page.reload()
    expect(page.locator("#sign-in")).to_be_visible()


# --- identifiers: the browser's check is the server's --------------------------


def _python_check(kind: str, value: str) -> list[str]:
    try:
        checked = validate_uscc(value) if kind == "uscc" else validate_registration_number(value)
    except IdentifierError as exc:
        return ["error", exc.code]
    return ["ok", checked]


def _variants(code: str, rng: random.Random) -> list[str]:
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in code)
    position = rng.randrange(18)
    other = rng.choice([c for c in USCC_ALPHABET + "IOSVZ" if c != code[position]])
    swap = rng.randrange(17)
    return [
        code,
        code.lower(),
        full_width,
        f"  {code}\u3000",
        f"\ufeff{code}",
        code[:-1],
        code + "1",
        code[:17] + rng.choice([c for c in USCC_ALPHABET if c != code[17]]),
        code[:16] + rng.choice([c for c in "0123456789X" if c != code[16]]) + code[17],
        code[:4] + rng.choice("ABCDEFGHJK") + code[5:],
        code[:position] + other + code[position + 1 :],
        code[:swap] + code[swap + 1] + code[swap] + code[swap + 2 :],
    ]


def test_uscc_check_in_the_browser_is_the_servers(system: RunningSystem, page: Page) -> None:
    rng = random.Random(20261126)
    cases: list[list[str]] = []
    for _ in range(40):
        body = "".join(rng.choices(USCC_ALPHABET, k=8))
        division = "".join(rng.choices("0123456789", k=6))
        code = make_uscc(org_body=body, division=division, authority=rng.choice("9125"))
        cases += [["uscc", v] for v in _variants(code, rng)]
    for _ in range(40):
        number = make_registration_number("".join(rng.choices("0123456789", k=14)))
        wrong = str((int(number[-1]) + rng.randrange(1, 10)) % 10)
        for value in (number, number[:-1] + wrong, number[:-1], number[:7] + "A" + number[8:]):
            cases.append(["registration", value])
    page.goto(f"{system.url('ingest')}/workbench/")
    from_browser = page.evaluate(
        """async (cases) => {
            const ids = await import("./static/identifiers.js");
            return cases.map(([kind, value]) => {
                const r = ids.checkIdentifier(kind, value);
                return r.ok ? ["ok", r.value] : ["error", r.code];
            });
        }""",
        cases,
    )
    expected = [_python_check(kind, value) for kind, value in cases]
    mismatches = [
        (case, js, py)
        for case, js, py in zip(cases, from_browser, expected, strict=True)
        if js != py
    ]
    assert not mismatches, mismatches[:10]
    outcomes = {e[1] for e in expected if e[0] == "error"}
    assert len(cases) >= 600
    assert {"invalid_length", "invalid_character", "invalid_check_character"} <= outcomes
    assert {"invalid_org_code_check", "invalid_check_digit"} <= outcomes


# --- online entry ---------------------------------------------------------------


def test_online_entry_errors_next_to_fields_then_correction_and_revocation(
    system: RunningSystem, page: Page, screenshots: Path
) -> None:
    sign_in(page, system, token(system, "CQ-SAMR", "records:write"))
    page.locator("#panel-entry").get_by_label("记录类别").select_option("administrative_penalty")
    form = page.locator("form.record-form")
    expect(form).to_be_visible()
    uscc = new_uscc()
    wrong = uscc[:17] + ("0" if uscc[17] != "0" else "1")
    source_id = f"渝中市监处罚〔2026〕{uscc[-6:]}号"

    # A required field shows its mark; the USCC is checked as it is typed.
    expect(form.get_by_label("行政处罚决定书文号")).to_have_attribute("aria-required", "true")
    form.get_by_label("业务编号").fill(source_id)
    form.get_by_label("统一社会信用代码", exact=True).fill(wrong)
    uscc_field = form.get_by_label("统一社会信用代码", exact=True)
    expect(uscc_field).to_have_attribute("aria-invalid", "true")
    assert "第18位（校验码）应为" in description(page, uscc_field)
    form.get_by_label("行政处罚决定书文号").fill(source_id)
    form.get_by_role("textbox", name="处罚机关", exact=True).fill("重庆市渝中区市场监督管理局")
    form.get_by_label("处罚决定日期").fill("2026-06-10")
    form.get_by_label("违法行为类型").fill("产品质量")
    form.get_by_label("违法事实").fill("销售不合格的建筑用钢筋")
    form.get_by_label("罚款", exact=True).check()
    form.get_by_label("处罚内容").fill("罚款人民币叁万元")
    # The enterprise name is left out: two mistakes at once.
    form.get_by_role("button", name="提交记录").click()

    summary = form.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("统一社会信用代码")
    expect(summary).to_contain_text("行政相对人名称")
    name_field = form.get_by_label("行政相对人名称")
    expect(name_field).to_have_attribute("aria-invalid", "true")
    assert "必填" in description(page, name_field)
    shoot(page, screenshots, "03-entry-errors")

    # Fix both; the server then finds the fine missing for a penalty that fines.
    uscc_field.fill(uscc)
    assert "校验通过" in description(page, uscc_field)
    name = f"{XSS}重庆渝信建材贸易有限公司"
    name_field.fill(name)
    form.get_by_role("button", name="提交记录").click()
    fine_box = form.locator("fieldset.subgroup", has=page.get_by_text("罚款金额", exact=True))
    expect(fine_box.locator(".field-error").last).to_contain_text("必填")
    expect(summary).to_contain_text("罚款金额")

    fine_box.get_by_label("金额").fill("30000")
    form.get_by_role("button", name="提交记录").click()
    result = page.locator("#entry-result")
    expect(result.locator("h3")).to_have_text("已受理：第 1 版")
    expect(page.locator("#entry-record-status")).to_have_text("已受理")
    expect(page.locator("#entry-record-revision")).to_have_text("第 1 版")
    expect(result).to_contain_text(name)  # as text, never as markup
    no_markup_from_data(page)
    record_id = page.locator("#entry-record-id").inner_text()
    shoot(page, screenshots, "04-entry-accepted")

    # Correct it: the form comes back filled; a changed field makes revision 2.
    page.get_by_role("button", name="更正这条记录").click()
    expect(form.get_by_label("业务编号")).to_have_value(source_id)
    expect(form.get_by_label("罚款", exact=True)).to_be_checked()
    form.get_by_label("处罚内容").fill("罚款人民币叁万伍仟元")
    fine_box.get_by_label("金额").fill("35000")
    form.get_by_role("button", name="提交记录").click()
    expect(result.locator("h3")).to_have_text("已受理：第 2 版")
    expect(page.locator("#entry-record-id")).to_have_text(record_id)
    expect(result.locator("table tbody tr")).to_have_count(2)

    # Revoke it: a reason is required.
    page.get_by_role("button", name="撤销这条记录").click()
    reason = page.get_by_label("撤销原因")
    expect(reason).to_be_focused()
    reason.fill("撤")
    page.get_by_role("button", name="确认撤销").click()
    expect(reason).to_have_attribute("aria-invalid", "true")
    reason.fill("行政复议决定撤销原处罚决定")
    page.get_by_role("button", name="确认撤销").click()
    expect(page.locator("#entry-record-status")).to_have_text("已撤销")
    expect(result).to_contain_text("行政复议决定撤销原处罚决定")
    expect(page.locator("#entry-recent")).to_contain_text(source_id)
    shoot(page, screenshots, "05-entry-revoked")


def test_a_registration_from_the_example_links_the_applicants_notice(
    system: RunningSystem, page: Page
) -> None:
    sign_in(page, system, token(system, "CQ-SAMR", "records:write"))
    page.locator("#panel-entry").get_by_label("记录类别").select_option("registration")
    page.get_by_role("button", name="填入示例数据").click()
    form = page.locator("form.record-form")
    uscc = new_uscc()
    form.get_by_label("业务编号").fill(f"渝中市监设字〔2026〕{uscc[-6:]}号")
    form.get_by_label("统一社会信用代码", exact=True).fill(uscc)
    form.get_by_role("button", name="提交记录").click()
    expect(page.locator("#entry-record-status")).to_have_text("已受理")

    def notice_ready() -> bool:
        answer = httpx.get(f"{system.url('coordination')}/v1/registrations/{uscc}/notice")
        return answer.status_code == 200

    eventually(notice_ready)
    with page.context.expect_page() as opened:
        page.locator("#entry-notice-link").click()
    notice = opened.value
    notice.wait_for_load_state()
    expect(notice.locator("body")).to_contain_text("告知书")
    expect(notice.locator("body")).to_contain_text(uscc)
    notice.close()


# --- batch upload ---------------------------------------------------------------


def _csv(name: str, rows: list[list[str]]) -> FilePayload:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return {"name": name, "mimeType": "text/csv", "buffer": out.getvalue().encode("utf-8-sig")}


def _penalty_row(header: list[str], **overrides: str) -> list[str]:
    uscc = new_uscc()
    number = f"渝市监罚〔2026〕{uscc[-7:]}号"
    values = {
        "业务编号": number,
        "统一社会信用代码": uscc,
        "行政相对人名称": "重庆渝信物流有限公司",
        "行政处罚决定书文号": number,
        "处罚机关": "重庆市市场监督管理局",
        "处罚决定日期": "2026-05-20",
        "违法行为类型": "广告违法",
        "违法事实": "发布虚假广告",
        "处罚类别": "警告",
        "处罚内容": "警告",
        **overrides,
    }
    return [values.get(title, "") for title in header]


def test_batch_upload_with_bad_rows_then_the_fixed_rows(
    system: RunningSystem, page: Page, screenshots: Path
) -> None:
    sign_in(page, system, token(system, "CQ-SAMR", "records:write"))
    page.get_by_role("tab", name="批量上传").click()
    panel = page.locator("#panel-batch")
    panel.get_by_label("记录类别").select_option("administrative_penalty")
    template = download(page, page.locator("#batch-template-csv"))
    header = next(csv.reader(io.StringIO(template.decode("utf-8-sig"))))
    assert header[:2] == ["业务编号", "统一社会信用代码"]

    good = [_penalty_row(header) for _ in range(3)]
    bad_uscc = new_uscc()[:17] + "0"
    if _python_check("uscc", bad_uscc)[0] == "ok":
        bad_uscc = bad_uscc[:17] + "1"
    bad = [
        _penalty_row(header, 统一社会信用代码=bad_uscc),
        _penalty_row(header, 处罚决定日期="2026-13-45", 违法事实=XSS),
    ]
    panel.locator("#batch-file").set_input_files(_csv("处罚.csv", [header, *good, *bad]))
    page.get_by_role("button", name="上传", exact=True).click()
    progress = page.locator("#batch-progress")
    expect(progress).to_be_visible()
    expect(page.locator("#batch-progress-text")).to_contain_text("已处理完", timeout=60_000)
    expect(progress).to_have_attribute("value", "100")
    counts = page.locator("#batch-counts")
    expect(counts).to_contain_text("受理3")
    expect(counts).to_contain_text("拒绝2")
    table = page.locator("#batch-errors")
    expect(table.locator("tbody tr", has_text="uscc").locator("td").first).to_have_text("5")
    expect(table.locator("tbody tr", has_text="data.decided_on").locator("td").first).to_have_text(
        "6"
    )
    rows = [cell.strip() for cell in table.locator("tbody tr td:first-child").all_text_contents()]
    assert set(rows) == {"5", "6"}
    no_markup_from_data(page)
    shoot(page, screenshots, "06-batch-errors")

    errors_file = download(page, page.get_by_role("button", name="下载错误文件（CSV）"))
    lines = list(csv.reader(io.StringIO(errors_file.decode("utf-8-sig"))))
    assert lines[0][:2] == ["原行号", "错误说明"]
    assert [line[0] for line in lines[1:]] == ["5", "6"]
    fixed = [lines[0]]
    for line in lines[1:]:
        cells = dict(zip(lines[0], line, strict=True))
        cells["统一社会信用代码"] = new_uscc()
        cells["处罚决定日期"] = "2026-05-21"
        fixed.append([cells[title] for title in lines[0]])
    page.get_by_label("修改后的错误文件").set_input_files(_csv("处罚-已修改.csv", fixed))
    page.get_by_role("button", name="重新上传修改后的文件").click()
    expect(page.locator("#batch-result h3")).to_have_text(
        "处理完成：处罚-已修改.csv", timeout=60_000
    )
    expect(counts).to_contain_text("受理2")
    expect(counts).to_contain_text("拒绝0")
    expect(page.locator("#batch-errors")).to_have_count(0)
    expect(page.locator("#batch-history tbody tr")).not_to_have_count(0)
    shoot(page, screenshots, "07-batch-fixed")


# --- task inbox -----------------------------------------------------------------


def _register(http: httpx.Client, system: RunningSystem, uscc: str, name: str) -> None:
    registration = {
        "category": "registration",
        "source_id": f"渝中市监设字〔2026〕{uscc[-6:]}号",
        "uscc": uscc,
        "enterprise_name": name,
        "occurred_on": "2026-03-02",
        "data": {
            "name": name,
            "legal_representative": "王五",
            "enterprise_type": "有限责任公司（自然人投资或控股）",
            "established_on": "2026-03-02",
            "address": "重庆市渝中区上清寺路9号",
            "business_scope": "许可项目：道路货物运输（不含危险货物）。一般项目：国内货物运输代理",
            "registration_authority": "重庆市渝中区市场监督管理局",
        },
    }
    answer = http.post(
        f"{system.url('ingest')}/v1/records",
        json=registration,
        headers=headers(system, "CQ-SAMR", "records:write"),
    )
    assert answer.status_code == 202, answer.text


def _make_overdue(system: RunningSystem, task_id: str) -> None:
    """As if the task had opened three weeks ago: its deadlines are long past."""

    async def update() -> None:
        connection = await asyncpg.connect(
            f"postgresql://postgres@127.0.0.1:{system.ports['postgres']}/ecips"
        )
        try:
            await connection.execute(
                "UPDATE coordination.tasks SET opened_at = opened_at - interval '21 days', "
                "claim_due = claim_due - 21, feedback_due = feedback_due - 21 "
                "WHERE task_id = $1::uuid",
                task_id,
            )
        finally:
            await connection.close()

    # Playwright's sync API keeps an event loop running in this thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, update()).result()


def test_task_inbox_claim_and_feedback_with_overdue_highlighted_and_the_notice(
    system: RunningSystem, page: Page, screenshots: Path
) -> None:
    fresh, late = new_uscc(), new_uscc()
    fresh_name = f"{XSS}重庆渝信运输有限公司"
    late_name = "重庆渝快货运有限公司"
    transport = headers(system, "CQ-TRANSPORT", "tasks:handle")
    with httpx.Client(timeout=10) as http:
        _register(http, system, fresh, fresh_name)
        _register(http, system, late, late_name)

        def task_of(uscc: str) -> dict[str, Any] | None:
            answer = http.get(
                f"{system.url('coordination')}/v1/tasks",
                params={"type": "double_notification", "uscc": uscc},
                headers=transport,
            )
            assert answer.status_code == 200, answer.text
            items: list[dict[str, Any]] = answer.json()["items"]
            return items[0] if items else None

        fresh_task = eventually(lambda: task_of(fresh))
        overdue_task = eventually(lambda: task_of(late))
    _make_overdue(system, overdue_task["task_id"])

    sign_in(page, system, token(system, "CQ-TRANSPORT", "tasks:handle"))
    expect(page.get_by_role("tab", name="任务收件箱")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tab", name="在线录入")).to_be_hidden()
    page.get_by_label("任务类型").select_option("double_notification")
    page.get_by_label("状态").select_option("open")
    page.get_by_role("button", name="查询").click()
    late_row = page.locator(f"tr[data-task-id='{overdue_task['task_id']}']")
    expect(late_row).to_have_class("overdue")
    expect(late_row).to_contain_text("已逾期")
    fresh_row = page.locator(f"tr[data-task-id='{fresh_task['task_id']}']")
    expect(fresh_row).to_have_count(1)
    expect(fresh_row).not_to_have_class("overdue")
    expect(fresh_row).to_contain_text(fresh_name)
    no_markup_from_data(page)
    page.get_by_label("只看已逾期").check()
    expect(late_row).to_have_count(1)
    expect(fresh_row).to_have_count(0)
    shoot(page, screenshots, "08-tasks-overdue")
    page.get_by_label("只看已逾期").uncheck()

    fresh_row.get_by_role("button", name="办理").click()
    detail = page.locator("#task-detail")
    expect(detail.locator("h3")).to_be_focused()
    expect(detail).to_contain_text("道路货物运输")
    page.get_by_role("button", name="签收", exact=True).click()
    expect(page.locator("#flash")).to_contain_text("已签收")
    expect(fresh_row).to_contain_text("已签收")

    # Feedback: a granted licence needs its number; the server says so next to the field.
    page.get_by_role("combobox", name="办理结果").select_option("license_granted")
    page.get_by_label("情况说明").fill("已核发道路运输经营许可证")
    page.get_by_role("button", name="提交反馈").click()
    license_field = page.get_by_label("许可证编号")
    expect(license_field).to_have_attribute("aria-invalid", "true")
    expect(detail.locator(".error-summary")).to_be_focused()
    license_field.fill("渝交运管许可字500103000123号")
    page.get_by_role("button", name="提交反馈").click()
    expect(page.locator("#flash")).to_contain_text("已反馈并办结")
    expect(fresh_row).to_contain_text("已办结")
    expect(detail).to_contain_text("渝交运管许可字500103000123号")
    no_markup_from_data(page)
    shoot(page, screenshots, "09-task-done")

    # The applicant's notice, printable, in a new window.
    with page.context.expect_page() as opened:
        page.locator("#task-notice-link").click()
    notice = opened.value
    notice.wait_for_load_state()
    expect(notice.locator("body")).to_contain_text("告知书")
    expect(notice.locator("body")).to_contain_text("道路")
    assert notice.locator("img[src=x]").count() == 0
    notice.screenshot(path=str(screenshots / "workbench-10-notice.png"), full_page=True)
    notice.close()

    with httpx.Client(timeout=10) as http:
        done = http.get(
            f"{system.url('coordination')}/v1/tasks",
            params={"uscc": fresh, "status": "done"},
            headers=transport,
        ).json()["items"]
    assert [t["feedback"]["license_number"] for t in done] == ["渝交运管许可字500103000123号"]


# --- dashboards -----------------------------------------------------------------


def test_dashboards_own_department_and_every_department(
    system: RunningSystem, page: Page, screenshots: Path
) -> None:
    # A rejected submission this month, so the chart has something to show.
    with httpx.Client(timeout=10) as http:
        rejected = http.post(
            f"{system.url('ingest')}/v1/records",
            headers=headers(system, "CQ-HEALTH", "records:write"),
            json={
                "category": "administrative_penalty",
                "source_id": f"渝卫罚〔2026〕{new_uscc()[-5:]}号",
                "uscc": new_uscc(),
                "enterprise_name": "重庆渝信诊所有限公司",
                "occurred_on": china_today(),
                "data": {"decision_number": "渝卫罚〔2026〕1号"},
            },
        )
        assert rejected.status_code == 422, rejected.text

    sign_in(page, system, token(system, "CQ-HEALTH", "records:write"))
    page.get_by_role("tab", name="报送统计").click()
    own = page.locator("#dashboard-own")
    expect(own.locator("h3")).to_contain_text("重庆市卫生健康委员会")
    expect(own.locator("#dashboard-own-status")).to_be_visible()
    chart = own.locator("svg.chart")
    expect(chart).to_have_attribute("role", "img")
    expect(chart.locator("rect")).not_to_have_count(0)
    expect(own.locator("#dashboard-own-codes")).to_contain_text("required")
    expect(page.locator("#dashboard-all")).to_be_hidden()
    shoot(page, screenshots, "11-dashboard-own")
    exported = download(page, page.get_by_role("button", name="导出 CSV"))
    lines = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))
    assert lines[0][0] == "department"
    assert [line[0] for line in lines[1:]] == ["CQ-HEALTH"]
    page.get_by_role("button", name="退出登录").click()

    sign_in(page, system, token(system, "CQ-NDRC", "reports:read"))
    expect(page.get_by_role("tab", name="报送统计")).to_have_attribute("aria-selected", "true")
    every = page.locator("#dashboard-all")
    expect(every.locator("h3")).to_contain_text("全部门")
    expect(page.locator("#dashboard-own")).to_be_hidden()
    expect(every.locator("svg.chart rect")).not_to_have_count(0)
    table = every.locator("#dashboard-all-table tbody tr")
    expect(table.filter(has_text="CQ-HEALTH")).to_have_count(1)
    every.locator("h3").scroll_into_view_if_needed()
    shoot(page, screenshots, "12-dashboard-all", full_page=False)
    exported = download(page, every.get_by_role("button", name="导出 CSV"))
    lines = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))
    assert lines[0][0] == "department"
    assert "CQ-HEALTH" in [line[0] for line in lines[1:]]
    assert len(lines) > 40
