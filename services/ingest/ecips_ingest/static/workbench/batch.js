// Batch upload: template, upload with a progress bar, the per-row errors as a table and
// as a file, and re-upload of the fixed rows.

import { ApiError, api, upload } from "./api.js";
import { clear, formatDateTime, h, saveBlob } from "./dom.js";
import { BATCH_STATUS, errorLabel, errorText } from "./labels.js";

const POLL_MS = 500;
const ACCEPT = ".csv,.xlsx,.ndjson,.jsonl,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

export async function mountBatch(panel, ctx) {
  const catalogue = await ctx.catalogue();
  const categorySelect = h("select", { id: "batch-category", "aria-describedby": "batch-category-help" },
    h("option", { value: "" }, "请选择记录类别"),
    catalogue.categories.map((c) => h("option", { value: c.key }, `${c.name}（${c.key}）`)));
  const templates = h("p", { className: "templates", id: "batch-templates" });
  const fileInput = h("input", { type: "file", id: "batch-file", accept: ACCEPT, "aria-describedby": "batch-file-help" });
  const uploadButton = h("button", { type: "submit", className: "button-primary", id: "batch-upload" }, "上传");
  const uploadError = h("p", { className: "field-error", id: "batch-file-error", role: "alert", hidden: true });
  const progress = h("progress", { id: "batch-progress", max: "100", value: "0" });
  const progressText = h("p", { id: "batch-progress-text", className: "progress-text", "aria-live": "polite" });
  const progressBox = h("div", { className: "progress-box", hidden: true },
    h("label", { for: "batch-progress" }, "进度"), progress, progressText);
  const result = h("section", { id: "batch-result", className: "result", "aria-labelledby": "batch-result-title", hidden: true });
  const history = h("div", { id: "batch-history" });

  const form = h("form", { className: "upload-form", novalidate: true, "aria-label": "上传文件" },
    h("div", { className: "field" },
      h("label", { for: "batch-category" }, "记录类别 ", h("span", { className: "required-mark", "aria-hidden": "true" }, "*")),
      categorySelect,
      h("p", { className: "help", id: "batch-category-help" }, "CSV 和 Excel 文件一个文件只放一个类别；NDJSON 文件每行可以写自己的类别。"),
      templates),
    h("div", { className: "field" },
      h("label", { for: "batch-file" }, "文件 ", h("span", { className: "required-mark", "aria-hidden": "true" }, "*")),
      fileInput,
      h("p", { className: "help", id: "batch-file-help" }, "CSV（UTF-8 或 Excel 另存的 GB18030）、Excel（.xlsx，第一个工作表）或 NDJSON。表头用模板中的中文列名。"),
      uploadError),
    h("div", { className: "actions" }, uploadButton));

  panel.append(
    h("h2", {}, "批量上传"),
    h("ol", { className: "steps" },
      h("li", {}, "选择记录类别，下载模板（Excel 模板里有字段说明和示例）。"),
      h("li", {}, "按模板填好后上传，页面显示处理进度。"),
      h("li", {}, "处理完后查看被拒绝的行：下载错误文件，按“错误说明”改好后直接重新上传即可（“原行号”和“错误说明”两列会被忽略）。")),
    form,
    progressBox,
    result,
    h("section", { className: "subpanel", "aria-labelledby": "batch-history-title" },
      h("h3", { id: "batch-history-title" }, "本部门最近的批次"),
      history),
  );

  function renderTemplates() {
    clear(templates);
    const key = categorySelect.value;
    if (!key) return;
    const name = catalogue.names[key];
    templates.append("下载模板：",
      h("a", { href: `/v1/categories/${encodeURIComponent(key)}/template.xlsx`, download: `${name}-${key}.xlsx`, id: "batch-template-xlsx" }, `${name} Excel 模板`),
      " · ",
      h("a", { href: `/v1/categories/${encodeURIComponent(key)}/template.csv`, download: `${name}-${key}.csv`, id: "batch-template-csv" }, `${name} CSV 模板`));
  }
  categorySelect.addEventListener("change", renderTemplates);

  function showUploadError(message) {
    uploadError.textContent = message;
    uploadError.hidden = !message;
    if (message) fileInput.setAttribute("aria-invalid", "true");
    else fileInput.removeAttribute("aria-invalid");
  }

  function setProgress(percent, text) {
    progressBox.hidden = false;
    progress.value = String(Math.round(percent));
    progress.setAttribute("aria-valuetext", text);
    progressText.textContent = text;
  }

  async function send(file, category) {
    showUploadError("");
    clear(result);
    result.hidden = true;
    const body = new FormData();
    body.append("file", file, file.name);
    if (category) body.append("category", category);
    setProgress(0, `正在上传 ${file.name}…`);
    let accepted;
    try {
      accepted = await upload("/v1/batches", body, (share) => setProgress(share * 30, `正在上传 ${file.name}：${Math.round(share * 100)}%`));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      progressBox.hidden = true;
      const details = error.errors.map((e) => errorText(e.code, e.message));
      showUploadError(`上传未被接受：${details.length ? details.join("；") : errorText(error.code, error.detail || error.title)}`);
      fileInput.focus();
      return;
    }
    await follow(accepted.batch_id);
  }

  async function follow(batchId) {
    for (;;) {
      const batch = (await api(`/v1/batches/${encodeURIComponent(batchId)}`)).body;
      const share = batch.total ? batch.processed / batch.total : 0;
      const status = BATCH_STATUS[batch.status] || batch.status;
      setProgress(30 + share * 70, batch.total === null
        ? `${status}：正在清点行数…`
        : `${status}：已处理 ${batch.processed} / ${batch.total} 行，受理 ${batch.accepted} 行，拒绝 ${batch.rejected} 行`);
      if (batch.status === "done" || batch.status === "failed") {
        showResult(batch);
        await loadHistory();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  function showResult(batch) {
    clear(result);
    result.hidden = false;
    const done = batch.status === "done";
    result.append(h("h3", { id: "batch-result-title", tabindex: "-1" },
      done ? `处理完成：${batch.filename}` : `处理失败：${batch.filename}`));
    if (batch.failure) {
      result.append(h("p", { className: "flash flash-error" }, errorText(batch.failure.code, batch.failure.detail)));
    }
    result.append(h("dl", { className: "facts counts", id: "batch-counts" },
      count("总行数", batch.total ?? "—"),
      count("受理", batch.accepted, "ok"),
      count("其中与已有记录相同", batch.unchanged),
      count("拒绝", batch.rejected, batch.rejected ? "bad" : ""),
      count("提示", batch.warnings)));
    if (batch.errors.length) {
      result.append(h("table", { className: "table", id: "batch-errors" },
        h("caption", {}, batch.errors_truncated ? "被拒绝的行（只列出前 1000 条，全部请下载错误文件）" : "被拒绝的行"),
        h("thead", {}, h("tr", {}, ["原行号", "业务编号", "字段", "问题", "说明"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, batch.errors.map((e) => h("tr", {},
          h("td", {}, String(e.row)), h("td", {}, e.source_id || "—"), h("td", {}, e.field),
          h("td", {}, errorLabel(e.code, e.code)), h("td", {}, e.message))))));
      const download = h("button", { type: "button", className: "button-light", id: "batch-download-errors" }, "下载错误文件（CSV）");
      download.addEventListener("click", async () => {
        const blob = await api(`/v1/batches/${encodeURIComponent(batch.batch_id)}/errors.csv`, { as: "blob" });
        saveBlob(blob, `${batch.category || "batch"}-错误行-${batch.batch_id.slice(0, 8)}.csv`);
      });
      const fixedInput = h("input", { type: "file", id: "batch-fixed-file", accept: ACCEPT, "aria-describedby": "batch-fixed-help" });
      const reupload = h("button", { type: "submit", className: "button-primary", id: "batch-reupload" }, "重新上传修改后的文件");
      const reuploadForm = h("form", { className: "upload-form", novalidate: true, "aria-label": "重新上传修改后的文件" },
        h("div", { className: "field" },
          h("label", { for: "batch-fixed-file" }, "修改后的错误文件"),
          fixedInput,
          h("p", { className: "help", id: "batch-fixed-help" }, "把下载的错误文件按“错误说明”改好，保存后在这里上传；类别沿用本批次的。")),
        h("div", { className: "actions" }, download, reupload));
      reuploadForm.addEventListener("submit", (event) => {
        event.preventDefault();
        const file = fixedInput.files[0];
        if (!file) {
          fixedInput.focus();
          return;
        }
        categorySelect.value = batch.category || "";
        renderTemplates();
        send(file, batch.category);
      });
      result.append(reuploadForm);
    } else if (done) {
      result.append(h("p", { className: "flash flash-ok" }, "所有行都已受理。"));
    }
    if (batch.row_warnings && batch.row_warnings.length) {
      result.append(h("details", {}, h("summary", {}, `提示 ${batch.row_warnings.length} 条（已受理）`),
        h("ul", {}, batch.row_warnings.map((w) => h("li", {}, `第 ${w.row} 行 ${w.field}：${errorText(w.code, w.message)}`)))));
    }
    result.querySelector("h3").focus();
  }

  function count(term, value, tone = "") {
    return h("div", { className: tone ? `count-${tone}` : "" }, h("dt", {}, term), h("dd", {}, String(value)));
  }

  async function loadHistory() {
    let page;
    try {
      page = (await api("/v1/batches", { query: { limit: 10 } })).body;
    } catch (error) {
      if (error instanceof ApiError) return;
      throw error;
    }
    clear(history);
    if (!page.items.length) {
      history.append(h("p", { className: "muted" }, "还没有上传过文件。"));
      return;
    }
    history.append(h("table", { className: "table" },
      h("thead", {}, h("tr", {}, ["上传时间", "文件", "类别", "状态", "受理", "拒绝", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, page.items.map((b) => {
        const view = h("button", { type: "button", className: "link-button" }, "查看");
        view.setAttribute("aria-label", `查看批次 ${b.filename}`);
        view.addEventListener("click", () => follow(b.batch_id));
        return h("tr", {},
          h("td", {}, formatDateTime(b.created_at)), h("td", {}, b.filename),
          h("td", {}, catalogue.names[b.category] || b.category || "—"),
          h("td", {}, BATCH_STATUS[b.status] || b.status), h("td", {}, String(b.accepted)),
          h("td", {}, String(b.rejected)), h("td", {}, view));
      }))));
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    const category = categorySelect.value;
    const ndjson = file && /\.(nd)?jsonl?$|\.ndjson$/i.test(file.name);
    if (!file) {
      showUploadError("请选择要上传的文件。");
      fileInput.focus();
      return;
    }
    if (!category && !ndjson) {
      showUploadError("CSV 和 Excel 文件请先选择记录类别。");
      categorySelect.focus();
      return;
    }
    uploadButton.disabled = true;
    send(file, category).finally(() => {
      uploadButton.disabled = false;
    });
  });
  await loadHistory();
}
