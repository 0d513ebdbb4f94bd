// Submission compliance for a month: the department's own (records:write) and, with
// reports:read, every department's; a chart, a table and the API's CSV.

import { ApiError, api } from "./api.js";
import { barChart } from "./chart.js";
import { chinaToday, clear, formatDateTime, h, saveBlob } from "./dom.js";
import { FINDINGS, errorText, reasonLabel } from "./labels.js";

function yesNo(value, yes, no, pending) {
  if (value === null || value === undefined) return h("span", { className: "badge badge-pending" }, pending);
  return value ? h("span", { className: "badge badge-ok" }, yes) : h("span", { className: "badge badge-bad" }, no);
}

function percent(share) {
  return share === null || share === undefined ? "—" : `${(share * 100).toFixed(1)}%`;
}

export async function mountDashboard(panel, ctx) {
  const catalogue = await ctx.catalogue();
  const ownAllowed = ctx.has("records:write");
  const allAllowed = ctx.has("reports:read");
  const period = h("input", { id: "dashboard-period", type: "month", value: chinaToday().slice(0, 7), max: chinaToday().slice(0, 7), required: true, "aria-describedby": "dashboard-period-help dashboard-period-error" });
  const periodError = h("p", { className: "field-error", id: "dashboard-period-error", hidden: true });
  const form = h("form", { className: "inline-form", novalidate: true, "aria-label": "选择统计月份" },
    h("label", { for: "dashboard-period" }, "统计月份"), period,
    h("button", { type: "submit", className: "button-primary" }, "查看"),
    h("p", { className: "help", id: "dashboard-period-help" }, "记录按发生日期计入月份；报送截止时间为次月5日24时（北京时间）。"),
    periodError);
  const own = h("section", { id: "dashboard-own", className: "subpanel", "aria-labelledby": "dashboard-own-title", hidden: !ownAllowed });
  const all = h("section", { id: "dashboard-all", className: "subpanel", "aria-labelledby": "dashboard-all-title", hidden: !allAllowed });
  panel.append(
    h("h2", {}, "报送统计"),
    h("p", { className: "lead" }, allAllowed
      ? "本部门和所有部门当月的报送情况：是否按时、是否完整、是否准确，以及被拒绝的原因。"
      : "本部门当月的报送情况：是否按时、是否完整、是否准确，以及被拒绝的原因。"),
    form, own, all);

  const categoryNames = (keys) => (keys.length ? keys.map((k) => catalogue.names[k] || k).join("、") : "无");

  function showPeriodError(message) {
    periodError.textContent = message;
    periodError.hidden = !message;
    if (message) period.setAttribute("aria-invalid", "true");
    else period.removeAttribute("aria-invalid");
  }

  function exportButton(id, path, month, filename) {
    const button = h("button", { type: "button", className: "button-light", id }, "导出 CSV");
    button.addEventListener("click", async () => {
      try {
        const blob = await api(path, { query: { period: month, format: "csv" }, as: "blob" });
        saveBlob(blob, filename);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        ctx.flash(`导出失败：${error.detail || error.title}`, "error");
      }
    });
    return button;
  }

  function renderOwn(report, month) {
    clear(own);
    const item = report.items[0];
    own.append(h("h3", { id: "dashboard-own-title" }, `本部门 ${month}：${item.name}`));
    const deadline = `报送截止 ${formatDateTime(report.deadline)}${report.deadline_passed ? "（已过）" : "（未到）"}`;
    own.append(h("p", { className: "muted" }, `${deadline}；统计时间 ${formatDateTime(report.as_of)}`));
    own.append(h("ul", { className: "status-cards", id: "dashboard-own-status" },
      h("li", {}, h("span", { className: "card-title" }, "按时"), yesNo(item.on_time, "按时", "迟报", "截止日未到")),
      h("li", {}, h("span", { className: "card-title" }, "完整"), yesNo(item.complete, "完整", "有缺报")),
      h("li", {}, h("span", { className: "card-title" }, "准确"), yesNo(item.accurate, "准确", "拒绝率偏高")),
      h("li", {}, h("span", { className: "card-title" }, "问题"),
        item.findings.length ? item.findings.map((f) => h("span", { className: "badge badge-bad" }, FINDINGS[f] || f)) : h("span", { className: "badge badge-ok" }, "无"))));
    own.append(h("dl", { className: "facts" },
      fact("应报类别", categoryNames(item.expected_categories)),
      fact("已报类别", categoryNames(item.received_categories)),
      fact("缺报类别", categoryNames(item.missing_categories)),
      fact("零报告", categoryNames(item.nil_returns)),
      fact("当月记录", `${item.records} 条，其中迟报 ${item.late_records} 条`),
      fact("报送行数", `共 ${item.rows_received} 行：受理 ${item.rows_accepted}（其中重复 ${item.rows_unchanged}），拒绝 ${item.rows_rejected}`),
      fact("拒绝率", percent(item.rejected_share)),
      fact("法人库未匹配", item.unmatched_records === null ? "暂无法统计" : `${item.unmatched_records} 条`)));
    if (item.top_rejection_codes.length) {
      own.append(barChart({
        title: `${month} 被拒绝的主要原因（行数）`,
        description: item.top_rejection_codes.map((c) => `${reasonLabel(c.code)} ${c.rows} 行`).join("；"),
        rows: item.top_rejection_codes.map((c) => ({ label: reasonLabel(c.code), values: [c.rows] })),
        series: [{ name: "被拒绝的行", className: "bar-rejected" }],
        unit: " 行",
      }));
      own.append(h("table", { className: "table", id: "dashboard-own-codes" },
        h("caption", {}, "被拒绝的原因"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "原因"), h("th", { scope: "col" }, "代码"), h("th", { scope: "col" }, "行数"))),
        h("tbody", {}, item.top_rejection_codes.map((c) => h("tr", {},
          h("td", {}, reasonLabel(c.code)), h("td", {}, h("code", {}, c.code)), h("td", {}, String(c.rows)))))));
    } else {
      own.append(h("p", { className: "muted" }, "本月没有被拒绝的记录。"));
    }
    for (const note of report.notes) own.append(h("p", { className: "muted" }, note));
    own.append(h("div", { className: "actions" },
      exportButton("dashboard-own-csv", "/v1/me/compliance", month, `报送统计-${item.department}-${month}.csv`)));
  }

  function renderAll(report, month) {
    clear(all);
    all.append(h("h3", { id: "dashboard-all-title" }, `全部门 ${month}（${report.total} 个部门）`));
    const counted = (finding) => report.items.filter((i) => i.findings.includes(finding)).length;
    all.append(h("ul", { className: "status-cards", id: "dashboard-all-status" },
      h("li", {}, h("span", { className: "card-title" }, "无问题"), h("strong", {}, String(report.items.filter((i) => !i.findings.length).length))),
      h("li", {}, h("span", { className: "card-title" }, "迟报"), h("strong", {}, String(counted("late")))),
      h("li", {}, h("span", { className: "card-title" }, "漏报"), h("strong", {}, String(counted("incomplete")))),
      h("li", {}, h("span", { className: "card-title" }, "不准确"), h("strong", {}, String(counted("inaccurate"))))));
    const active = report.items
      .filter((i) => i.rows_received > 0)
      .sort((a, b) => b.rows_received - a.rows_received)
      .slice(0, 20);
    if (active.length) {
      all.append(barChart({
        title: `${month} 各部门报送行数（受理 / 拒绝，前 ${active.length} 个部门）`,
        description: active.map((i) => `${i.name}：受理 ${i.rows_accepted} 行，拒绝 ${i.rows_rejected} 行`).join("；"),
        rows: active.map((i) => ({ label: i.name, values: [i.rows_accepted, i.rows_rejected] })),
        series: [{ name: "受理", className: "bar-accepted" }, { name: "拒绝", className: "bar-rejected" }],
        unit: " 行",
      }));
    } else {
      all.append(h("p", { className: "muted" }, "本月还没有部门报送。"));
    }
    const onlyFindings = h("input", { type: "checkbox", id: "dashboard-all-findings" });
    all.append(h("p", { className: "table-filter" }, onlyFindings, " ", h("label", { for: "dashboard-all-findings" }, "只看有问题的部门")));
    onlyFindings.addEventListener("change", () => {
      for (const row of all.querySelectorAll("#dashboard-all-table tbody tr")) {
        row.hidden = onlyFindings.checked && !row.classList.contains("has-findings");
      }
    });
    all.append(h("div", { className: "table-scroll" }, h("table", { className: "table", id: "dashboard-all-table" },
      h("caption", {}, "各部门报送情况"),
      h("thead", {}, h("tr", {}, ["部门", "按时", "完整", "准确", "记录", "迟报", "接收行", "拒绝率", "缺报类别", "问题"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, report.items.map((i) => h("tr", { className: i.findings.length ? "has-findings" : "" },
        h("th", { scope: "row" }, i.name, h("br"), h("code", { className: "muted" }, i.department)),
        h("td", {}, yesNo(i.on_time, "是", "否", "未到")),
        h("td", {}, yesNo(i.complete, "是", "否")),
        h("td", {}, yesNo(i.accurate, "是", "否")),
        h("td", {}, String(i.records)),
        h("td", {}, String(i.late_records)),
        h("td", {}, String(i.rows_received)),
        h("td", {}, percent(i.rejected_share)),
        h("td", {}, categoryNames(i.missing_categories)),
        h("td", {}, i.findings.map((f) => FINDINGS[f] || f).join("、") || "—")))))));
    all.append(h("div", { className: "actions" },
      exportButton("dashboard-all-csv", "/v1/reports/compliance", month, `报送统计-全部门-${month}.csv`)));
  }

  function fact(term, value) {
    return h("div", {}, h("dt", {}, term), h("dd", {}, value));
  }

  async function load() {
    const month = period.value;
    if (!/^\d{4}-\d{2}$/.test(month)) {
      showPeriodError("请选择月份（年-月）。");
      period.focus();
      return;
    }
    showPeriodError("");
    const jobs = [];
    if (ownAllowed) jobs.push(api("/v1/me/compliance", { query: { period: month } }).then((r) => renderOwn(r.body, month)));
    if (allAllowed) jobs.push(api("/v1/reports/compliance", { query: { period: month } }).then((r) => renderAll(r.body, month)));
    try {
      await Promise.all(jobs);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const first = error.errors[0];
      showPeriodError(first ? errorText(first.code, first.message) : error.detail || error.title);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  await load();
}
