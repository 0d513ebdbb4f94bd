// The task inbox: double-notification and joint-punishment tasks of the department
// (coordination's API), filters, claim, feedback, overdue highlighted, and the
// applicant's printable notice.

import { ApiError, api, serviceUrl } from "./api.js";
import { chinaToday, clear, formatDateTime, h } from "./dom.js";
import { SimpleForm } from "./form.js";
import { OUTCOMES, TASK_ACTIONS, TASK_STATUS, TASK_TRIGGERS, TASK_TYPES } from "./labels.js";
import { checkIdentifier } from "./identifiers.js";

const PAGE_SIZE = 100;

function noticeUrl(uscc) {
  return new URL(serviceUrl("coordination", `/v1/registrations/${encodeURIComponent(uscc)}/notice?format=html`), window.location.href).href;
}

function select(id, label, options) {
  return h("div", { className: "field" },
    h("label", { for: id }, label),
    h("select", { id }, options.map(([value, text]) => h("option", { value }, text))));
}

export async function mountTasks(panel, ctx) {
  const filters = h("form", { className: "filters-form", novalidate: true, "aria-label": "筛选任务" },
    select("tasks-type", "任务类型", [["", "全部"], ...Object.entries(TASK_TYPES)]),
    select("tasks-status", "状态", [["", "全部"], ...Object.entries(TASK_STATUS)]),
    h("div", { className: "field" },
      h("label", { for: "tasks-uscc" }, "统一社会信用代码"),
      h("input", { id: "tasks-uscc", type: "text", autocomplete: "off", spellcheck: "false", maxlength: 40, "aria-describedby": "tasks-uscc-error" }),
      h("p", { className: "field-error", id: "tasks-uscc-error", hidden: true })),
    h("div", { className: "field checkbox-field" },
      h("input", { id: "tasks-overdue", type: "checkbox" }),
      h("label", { for: "tasks-overdue" }, "只看已逾期")),
    h("div", { className: "actions" }, h("button", { type: "submit", className: "button-primary" }, "查询")));
  const summary = h("p", { id: "tasks-summary", className: "summary-line", "aria-live": "polite" });
  const listHost = h("div", { id: "tasks-list" });
  const more = h("button", { type: "button", className: "button-light", id: "tasks-more", hidden: true }, "加载更多");
  const detail = h("section", { id: "task-detail", className: "result", "aria-labelledby": "task-detail-title", hidden: true });
  const noticeInput = h("input", { id: "notice-uscc", type: "text", autocomplete: "off", spellcheck: "false", maxlength: 40, "aria-describedby": "notice-uscc-help notice-uscc-error" });
  const noticeError = h("p", { className: "field-error", id: "notice-uscc-error", hidden: true });
  const noticeForm = h("form", { className: "inline-form", novalidate: true, "aria-label": "申请人告知书" },
    h("label", { for: "notice-uscc" }, "企业统一社会信用代码"), noticeInput,
    h("button", { type: "submit", className: "button-light" }, "打开告知书"),
    h("p", { className: "help", id: "notice-uscc-help" }, "企业登记后置审批事项告知书（双告知），在新窗口打开，可直接打印交给申请人。"),
    noticeError);

  panel.append(
    h("h2", {}, "任务收件箱"),
    h("p", { className: "lead" }, "登记机关推送的双告知任务和联合惩戒任务。请在签收期限内签收，在反馈期限内反馈办理结果；逾期的任务标红并注明“已逾期”。"),
    filters, summary, listHost, more, detail,
    h("section", { className: "subpanel", "aria-labelledby": "notice-title" },
      h("h3", { id: "notice-title" }, "申请人告知书"), noticeForm),
  );

  let tasks = [];
  let cursor = null;

  function query() {
    return {
      type: document.getElementById("tasks-type").value,
      status: document.getElementById("tasks-status").value,
      uscc: document.getElementById("tasks-uscc").value.trim(),
      limit: PAGE_SIZE,
    };
  }

  async function load(append = false) {
    const uscc = document.getElementById("tasks-uscc");
    const usccError = document.getElementById("tasks-uscc-error");
    usccError.hidden = true;
    uscc.removeAttribute("aria-invalid");
    const params = query();
    if (params.uscc) {
      const checked = checkIdentifier("uscc", params.uscc);
      if (!checked.ok) {
        usccError.textContent = checked.message;
        usccError.hidden = false;
        uscc.setAttribute("aria-invalid", "true");
        uscc.focus();
        return;
      }
      params.uscc = checked.value;
    }
    if (append && cursor) params.after = cursor;
    let page;
    try {
      page = (await api("/v1/tasks", { service: "coordination", query: params })).body;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      summary.textContent = `查询失败：${error.detail || error.title}`;
      return;
    }
    tasks = append ? [...tasks, ...page.items] : page.items;
    cursor = page.next_cursor;
    more.hidden = !cursor;
    render();
  }

  function render() {
    const onlyOverdue = document.getElementById("tasks-overdue").checked;
    const shown = onlyOverdue ? tasks.filter((t) => t.overdue) : tasks;
    const overdue = tasks.filter((t) => t.overdue).length;
    summary.textContent = `共 ${tasks.length} 项${cursor ? "（还有更多）" : ""}，其中已逾期 ${overdue} 项${onlyOverdue ? `，显示逾期的 ${shown.length} 项` : ""}。`;
    clear(listHost);
    if (!shown.length) {
      listHost.append(h("p", { className: "muted" }, "没有符合条件的任务。"));
      return;
    }
    listHost.append(h("table", { className: "table tasks-table" },
      h("caption", { className: "visually-hidden" }, "任务列表"),
      h("thead", {}, h("tr", {}, ["企业", "事项", "类型", "状态", "签收期限", "反馈期限", "操作"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, shown.map(row))));
  }

  function row(task) {
    const open = h("button", { type: "button", className: "button-light" }, "办理");
    open.setAttribute("aria-label", `办理：${task.enterprise_name}，${task.measure_title}`);
    open.addEventListener("click", () => showTask(task));
    const status = h("td", {}, h("span", { className: `badge badge-${task.status}` }, TASK_STATUS[task.status] || task.status));
    if (task.overdue) status.append(" ", h("span", { className: "badge badge-overdue" }, "已逾期"));
    return h("tr", { className: task.overdue ? "overdue" : "", dataset: { taskId: task.task_id } },
      h("td", {}, h("span", { className: "enterprise" }, task.enterprise_name), h("br"), h("code", { className: "muted" }, task.uscc)),
      h("td", {}, task.measure_title),
      h("td", {}, `${TASK_TYPES[task.type] || task.type} · ${TASK_ACTIONS[task.action] || task.action}`),
      status,
      h("td", {}, task.claim_due),
      h("td", {}, task.feedback_due),
      h("td", {}, open));
  }

  function fact(term, value) {
    if (value === null || value === undefined || value === "") return null;
    return h("div", {}, h("dt", {}, term), h("dd", {}, value));
  }

  function replaceTask(updated) {
    tasks = tasks.map((t) => (t.task_id === updated.task_id ? updated : t));
    render();
  }

  function showTask(task) {
    clear(detail);
    detail.hidden = false;
    const title = h("h3", { id: "task-detail-title", tabindex: "-1" }, `${task.enterprise_name} · ${task.measure_title}`);
    detail.append(title);
    if (task.overdue) detail.append(h("p", { className: "flash flash-error" }, `已逾期：签收期限 ${task.claim_due}，反馈期限 ${task.feedback_due}。`));
    detail.append(h("dl", { className: "facts" },
      fact("企业", `${task.enterprise_name}（${task.uscc}）`),
      fact("任务", `${TASK_TYPES[task.type] || task.type} · ${TASK_ACTIONS[task.action] || task.action}`),
      fact("事项", task.measure_title),
      fact("触发", task.trigger ? TASK_TRIGGERS[task.trigger] || task.trigger : task.rule_title),
      fact("依据", task.legal_basis),
      fact("原因", task.reason),
      fact("经营范围中的相关内容", task.scope_excerpt),
      fact("适用场景", task.scenarios.length ? task.scenarios.join("、") : null),
      fact("生效日期", task.effective_on ? `${task.effective_on}${task.effective_until ? ` 至 ${task.effective_until}` : ""}` : null),
      fact("推送时间", formatDateTime(task.opened_at)),
      fact("签收期限", task.claim_due),
      fact("反馈期限", task.feedback_due),
      fact("状态", TASK_STATUS[task.status] || task.status),
      fact("签收", task.claimed_at ? `${formatDateTime(task.claimed_at)}（${task.claimed_by || ""}）` : null),
      fact("办结", task.done_at ? formatDateTime(task.done_at) : null)));
    if (task.type === "double_notification") {
      detail.append(h("p", {}, h("a", { href: noticeUrl(task.uscc), target: "_blank", rel: "noopener noreferrer", id: "task-notice-link" },
        "查看申请人告知书（新窗口，可打印）")));
    }
    if (task.feedback) {
      const outcome = (OUTCOMES[task.action] || []).find(([value]) => value === task.feedback.outcome);
      detail.append(h("h4", {}, "反馈"), h("dl", { className: "facts" },
        fact("办理结果", outcome ? outcome[1] : task.feedback.outcome),
        fact("说明", task.feedback.note),
        fact("实施日期", task.feedback.applied_on),
        fact("文书或案件编号", task.feedback.case_reference),
        fact("许可证编号", task.feedback.license_number)));
    }
    if (task.status === "open") {
      const claim = h("button", { type: "button", className: "button-primary", id: "task-claim" }, "签收");
      claim.addEventListener("click", async () => {
        claim.disabled = true;
        try {
          const updated = (await api(`/v1/tasks/${task.task_id}/claim`, { service: "coordination", method: "POST" })).body;
          ctx.flash(`已签收：${updated.enterprise_name} · ${updated.measure_title}`, "ok");
          replaceTask(updated);
          showTask(updated);
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          claim.disabled = false;
          ctx.flash(`签收失败：${error.detail || error.title}`, "error");
        }
      });
      detail.append(h("div", { className: "actions" }, claim));
    }
    if (task.status !== "done") detail.append(feedbackForm(task));
    title.focus();
  }

  function feedbackForm(task) {
    const simple = new SimpleForm("反馈办理结果");
    simple.element.prepend(h("h4", {}, "反馈办理结果"));
    const outcome = h("select", { id: "feedback-outcome" }, h("option", { value: "" }, "请选择"),
      (OUTCOMES[task.action] || []).map(([value, text]) => h("option", { value }, text)));
    const note = h("textarea", { id: "feedback-note", rows: 3, maxlength: 2000 });
    const applied = h("input", { id: "feedback-applied-on", type: "date", max: chinaToday() });
    const reference = h("input", { id: "feedback-case-reference", type: "text", maxlength: 200 });
    const license = h("input", { id: "feedback-license-number", type: "text", maxlength: 100 });
    simple.field("outcome", "办理结果", outcome, { required: true });
    simple.field("note", "情况说明", note, { required: true, help: "简要说明办理情况，例如“已在政府采购供应商库中标记限制”。" });
    if (task.type === "joint_punishment") {
      simple.field("applied_on", "实施日期", applied, { help: "不能晚于今天。" });
      simple.field("case_reference", "文书或案件编号", reference);
    }
    const licenseField = simple.field("license_number", "许可证编号", license, { help: "办理结果为“已核发许可”时必填。" });
    licenseField.hidden = task.type !== "double_notification";
    const submit = h("button", { type: "submit", className: "button-primary", id: "feedback-submit" }, "提交反馈");
    simple.element.append(h("div", { className: "actions" }, submit));
    simple.element.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { outcome: outcome.value, note: note.value.trim() };
      if (applied.value) body.applied_on = applied.value;
      if (reference.value.trim()) body.case_reference = reference.value.trim();
      if (license.value.trim()) body.license_number = license.value.trim();
      submit.disabled = true;
      try {
        const updated = (await api(`/v1/tasks/${task.task_id}/feedback`, { service: "coordination", method: "POST", body })).body;
        ctx.flash(`已反馈并办结：${updated.enterprise_name} · ${updated.measure_title}`, "ok");
        replaceTask(updated);
        showTask(updated);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.status !== 401) simple.showErrors(error);
      } finally {
        submit.disabled = false;
      }
    });
    return simple.element;
  }

  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  document.getElementById("tasks-overdue").addEventListener("change", render);
  more.addEventListener("click", () => load(true));
  noticeForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const checked = checkIdentifier("uscc", noticeInput.value);
    if (!checked.ok) {
      noticeError.textContent = checked.message;
      noticeError.hidden = false;
      noticeInput.setAttribute("aria-invalid", "true");
      noticeInput.focus();
      return;
    }
    noticeError.hidden = true;
    noticeInput.removeAttribute("aria-invalid");
    window.open(noticeUrl(checked.value), "_blank", "noopener");
  });
  await load();
}
