// Online entry: pick a category, fill the generated form, submit; then the record,
// its revisions and status, with correction and revocation.

import { ApiError, api, serviceUrl, session } from "./api.js";
import { clear, formatDateTime, h } from "./dom.js";
import { RecordForm, SimpleForm } from "./form.js";
import { RECORD_STATUS, errorText } from "./labels.js";

const RECENT_KEY = "records";
const NOTICE_CATEGORIES = new Set(["registration", "registration_change"]);

export async function mountEntry(panel, ctx) {
  const catalogue = await ctx.catalogue();
  const categorySelect = h("select", { id: "entry-category", required: true, "aria-required": "true", "aria-describedby": "entry-category-help" },
    h("option", { value: "" }, "请选择记录类别"),
    catalogue.categories.map((c) => h("option", { value: c.key }, `${c.name}（${c.key}）`)));
  const exampleButton = h("button", { type: "button", className: "button-light", id: "entry-example", hidden: true }, "填入示例数据");
  const categoryInfo = h("p", { className: "help", id: "entry-category-info" });
  const formHost = h("div", { id: "entry-form" });
  const result = h("section", { id: "entry-result", className: "result", "aria-live": "polite", "aria-labelledby": "entry-result-title", hidden: true });
  const recentList = h("ul", { id: "entry-recent", className: "plain-list" });
  const lookupInput = h("input", { id: "entry-lookup", type: "text", autocomplete: "off", spellcheck: "false", "aria-describedby": "entry-lookup-help" });
  const lookupForm = h("form", { className: "inline-form", novalidate: true, "aria-label": "按记录编号查看" },
    h("label", { for: "entry-lookup" }, "记录编号"), lookupInput,
    h("button", { type: "submit", className: "button-light" }, "查看"),
    h("p", { className: "help", id: "entry-lookup-help" }, "提交后回执中的记录编号（一串带连字符的字母数字）。"));

  let form = null;

  panel.append(
    h("h2", {}, "在线录入"),
    h("p", { className: "lead" }, "选择记录类别，按表格填写后提交。提交后会显示记录编号、版本和状态；同一业务编号再次提交即为更正，也可以撤销本部门报送的记录。"),
    catalogue.categories.length
      ? h("div", { className: "field" },
        h("label", { for: "entry-category" }, "记录类别 ", h("span", { className: "required-mark", "aria-hidden": "true" }, "*")),
        categorySelect,
        h("p", { className: "help", id: "entry-category-help" }, "只列出本部门可以报送的类别。"),
        categoryInfo,
        exampleButton)
      : h("p", { className: "flash flash-error" }, "部门目录中没有本部门可以报送的记录类别。"),
    result,
    formHost,
    h("section", { className: "subpanel", "aria-labelledby": "entry-recent-title" },
      h("h3", { id: "entry-recent-title" }, "本次登录提交的记录"),
      recentList,
      lookupForm),
  );

  function recent() {
    return session.recall(RECENT_KEY, []);
  }

  function renderRecent() {
    clear(recentList);
    const items = recent();
    if (!items.length) recentList.append(h("li", { className: "muted" }, "还没有。提交的记录会列在这里，便于更正或撤销。"));
    for (const item of items) {
      const open = h("button", { type: "button", className: "link-button" }, `${item.source_id} · ${item.enterprise_name}`);
      open.addEventListener("click", () => showRecord(item.record_id));
      recentList.append(h("li", {}, open, h("span", { className: "muted" }, ` ${catalogue.names[item.category] || item.category}`)));
    }
  }

  function remember(record) {
    const items = recent().filter((item) => item.record_id !== record.record_id);
    items.unshift(record);
    session.remember(RECENT_KEY, items.slice(0, 50));
    renderRecent();
  }

  async function chooseCategory(key, fillWith) {
    clear(formHost);
    clear(result);
    result.hidden = true;
    categoryInfo.textContent = "";
    exampleButton.hidden = true;
    form = null;
    if (!key) return;
    const detail = await catalogue.detail(key);
    const disclosure = { public: "向社会公示", authorized: "授权查询", government: "仅政府部门共享" }[detail.disclosure] || detail.disclosure;
    categoryInfo.textContent = `${detail.description || ""} 公开方式：${disclosure}。依据：${detail.legal_basis}`;
    form = new RecordForm(detail, { onSubmit: submit });
    formHost.append(form.element);
    exampleButton.hidden = false;
    if (fillWith) form.fill(fillWith);
  }

  categorySelect.addEventListener("change", () => {
    chooseCategory(categorySelect.value).catch(showLoadError);
  });
  exampleButton.addEventListener("click", async () => {
    if (!form) return;
    const detail = await catalogue.detail(form.detail.key);
    form.fill(detail.example.record);
    ctx.flash("已填入示例数据：请把业务编号、企业等改成真实内容后再提交。");
  });

  function showLoadError(error) {
    formHost.append(h("p", { className: "flash flash-error", role: "alert" }, `加载失败：${error.detail || error.message}`));
  }

  async function submit(body) {
    const button = form.element.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const answer = await api("/v1/records", { method: "POST", body });
      form.clearErrors();
      const receipt = answer.body;
      remember({ record_id: receipt.record_id, category: body.category, source_id: body.source_id, enterprise_name: body.enterprise_name });
      const same = answer.status === 200;
      // The record takes the form's place; "录入新记录" brings an empty form back.
      clear(formHost);
      form = null;
      exampleButton.hidden = true;
      await showRecord(receipt.record_id, { receipt, same });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status !== 401) form.showErrors(error);
    } finally {
      button.disabled = false;
    }
  }

  async function showRecord(recordId, { receipt = null, same = false } = {}) {
    clear(result);
    result.hidden = false;
    let record;
    try {
      record = (await api(`/v1/records/${encodeURIComponent(recordId)}`)).body;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const why = error.status === 404 || error.status === 422 ? "没有这条记录" : error.status === 403 ? "这条记录不是本部门报送的" : error.detail;
      result.append(h("h3", { id: "entry-result-title" }, "查看记录"), h("p", { className: "flash flash-error", role: "alert" }, why));
      return;
    }
    const current = record.revisions[record.revisions.length - 1];
    const heading = receipt
      ? (same ? "内容与已受理的版本相同，未生成新版本" : `已受理：第 ${receipt.revision} 版`)
      : `记录 ${record.source_id}`;
    result.append(h("h3", { id: "entry-result-title", tabindex: "-1" }, heading));
    if (receipt && receipt.warnings && receipt.warnings.length) {
      result.append(h("ul", { className: "warnings" }, receipt.warnings.map((w) => h("li", {}, `提示：${errorText(w.code, w.message)}`))));
    }
    const statusText = RECORD_STATUS[record.status] || record.status;
    result.append(h("dl", { className: "facts", id: "entry-record" },
      fact("记录编号", h("code", { id: "entry-record-id" }, record.record_id)),
      fact("业务编号", record.source_id),
      fact("类别", catalogue.names[record.category] || record.category),
      fact("状态", h("span", { className: `badge badge-${record.status}`, id: "entry-record-status" }, statusText)),
      fact("当前版本", h("span", { id: "entry-record-revision" }, `第 ${record.current_revision} 版`)),
      fact("企业", `${current.enterprise_name}（${current.uscc || current.registration_number || "—"}）`),
      record.status === "revoked" ? fact("撤销原因", `${record.revocation_reason || ""}（${formatDateTime(record.revoked_at)}）`) : null));
    if (NOTICE_CATEGORIES.has(record.category) && current.uscc && record.status !== "revoked") {
      // The applicant's notice of the approvals the business scope needs (双告知).
      const url = serviceUrl("coordination", `/v1/registrations/${encodeURIComponent(current.uscc)}/notice?format=html`);
      result.append(h("p", {},
        h("a", { href: new URL(url, window.location.href).href, target: "_blank", rel: "noopener noreferrer", id: "entry-notice-link" },
          "打开申请人告知书（新窗口，可打印）"),
        h("span", { className: "muted" }, " 登记信息同步到协同服务后即可查看，通常不超过几秒。")));
    }
    result.append(h("table", { className: "table" },
      h("caption", {}, "各版本"),
      h("thead", {}, h("tr", {}, ["版本", "企业名称", "统一社会信用代码", "发生日期", "受理时间", "来源"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, record.revisions.map((r) => h("tr", {},
        h("td", {}, `第 ${r.revision} 版`), h("td", {}, r.enterprise_name), h("td", {}, r.uscc || "—"),
        h("td", {}, r.occurred_on), h("td", {}, formatDateTime(r.accepted_at)), h("td", {}, r.batch_id ? "批量上传" : "在线录入"))))));
    if (record.status !== "revoked") {
      const correct = h("button", { type: "button", className: "button-light", id: "entry-correct" }, "更正这条记录");
      const revoke = h("button", { type: "button", className: "button-danger", id: "entry-revoke" }, "撤销这条记录");
      const revokeHost = h("div", {});
      correct.addEventListener("click", () => startCorrection(record, current));
      revoke.addEventListener("click", () => {
        revoke.disabled = true;
        revokeHost.append(revocationForm(record, () => {
          revoke.disabled = false;
          clear(revokeHost);
        }));
        revokeHost.querySelector("textarea").focus();
      });
      result.append(h("div", { className: "actions" }, correct, revoke, newRecordButton(record)), revokeHost);
    } else {
      result.append(h("div", { className: "actions" }, newRecordButton(record)));
    }
    result.querySelector("h3").focus();
  }

  function newRecordButton(record) {
    const button = h("button", { type: "button", className: "button-light", id: "entry-new" }, "录入新记录");
    button.addEventListener("click", () => {
      categorySelect.value = record.category;
      chooseCategory(record.category)
        .then(() => form.element.querySelector("input, select, textarea").focus())
        .catch(showLoadError);
    });
    return button;
  }

  function fact(term, value) {
    return h("div", {}, h("dt", {}, term), h("dd", {}, value));
  }

  async function startCorrection(record, revision) {
    categorySelect.value = record.category;
    await chooseCategory(record.category, {
      source_id: record.source_id,
      uscc: revision.uscc,
      registration_number: revision.registration_number,
      enterprise_name: revision.enterprise_name,
      occurred_on: revision.occurred_on,
      data: revision.data,
    });
    ctx.flash(`正在更正记录 ${record.source_id}：修改后提交，即生成第 ${record.current_revision + 1} 版（业务编号保持不变）。`);
    form.element.querySelector("input, select, textarea").focus();
  }

  function revocationForm(record, close) {
    const simple = new SimpleForm("撤销记录");
    const reason = h("textarea", { id: "entry-revoke-reason", rows: 2, maxlength: 1000 });
    simple.field("reason", "撤销原因", reason, { required: true, help: "例如：行政复议决定撤销原处罚决定。至少两个字。" });
    const confirm = h("button", { type: "submit", className: "button-danger" }, "确认撤销");
    const cancel = h("button", { type: "button", className: "button-light" }, "取消");
    cancel.addEventListener("click", close);
    simple.element.append(h("div", { className: "actions" }, confirm, cancel));
    simple.element.addEventListener("submit", async (event) => {
      event.preventDefault();
      confirm.disabled = true;
      try {
        await api(`/v1/records/${encodeURIComponent(record.record_id)}/revocation`, {
          method: "POST", body: { reason: reason.value.trim() },
        });
        ctx.flash(`记录 ${record.source_id} 已撤销。`, "ok");
        await showRecord(record.record_id);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.status !== 401) simple.showErrors(error);
      } finally {
        confirm.disabled = false;
      }
    });
    return simple.element;
  }

  lookupForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = lookupInput.value.trim();
    if (id) showRecord(id);
  });
  renderRecent();
}
