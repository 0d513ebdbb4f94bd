// A record form generated from a category's JSON Schema (GET /v1/categories/{key}):
// Chinese labels from the schema's titles, required marks, dates as date inputs,
// enumerations as selects or check boxes, identifiers checked as they are typed, and
// the server's field errors shown next to their fields and in a summary.

import { checkIdentifier } from "./identifiers.js";
import { errorLabel, errorText } from "./labels.js";
import { h, uniqueId } from "./dom.js";

const ENVELOPE = [
  {
    key: "source_id",
    title: "业务编号",
    required: true,
    maxLength: 128,
    help: "本部门给这条记录的编号，通常就是决定文书号。用同一个编号再次提交，就是更正这条记录。",
  },
  {
    key: "uscc",
    title: "统一社会信用代码",
    identifier: "uscc",
    help: "18位，输入时即校验。与“原工商注册号”至少填一项。",
  },
  {
    key: "registration_number",
    title: "原工商注册号",
    identifier: "registration",
    help: "15位数字。企业只有旧注册号时填写。",
  },
  { key: "enterprise_name", title: "行政相对人名称", required: true, maxLength: 200 },
  { key: "occurred_on", title: "发生日期", required: true, format: "date" },
];

const LIST_SEPARATORS = /[、,，;；\s]+/;

function enumLabels(schema) {
  // "deregistered 注销；revoked 吊销" in a description names the values in Chinese.
  const labels = {};
  const text = typeof schema.description === "string" ? schema.description : "";
  for (const part of text.split(/[；;]/)) {
    const match = part.trim().match(/^([A-Za-z0-9_]+)\s+(.+)$/);
    if (match) labels[match[1]] = match[2].trim();
  }
  return labels;
}

function pathId(path) {
  return uniqueId(`f-${path.replace(/[^A-Za-z0-9]+/g, "-")}`);
}

function isEmpty(value) {
  return value === undefined || value === null || value === "" || (Array.isArray(value) && value.length === 0);
}

function valueAt(record, path) {
  let current = record;
  for (const part of path.match(/[^.[\]]+/g) || []) {
    if (current === undefined || current === null) return undefined;
    current = current[/^\d+$/.test(part) ? Number(part) : part];
  }
  return current;
}

export function parentPath(path) {
  return path.replace(/(\[\d+\]|\.[^.[\]]+)$/, "");
}

export class RecordForm {
  /** detail: GET /v1/categories/{key}; onSubmit(body) is called with the collected record. */
  constructor(detail, { onSubmit } = {}) {
    this.detail = detail;
    this.fields = new Map();
    this.arrays = new Map();
    this.summary = h("div", { className: "error-summary", tabindex: "-1", hidden: true, role: "alert" });
    this.element = h("form", { className: "record-form", novalidate: true, "aria-label": `${detail.name}记录` });
    this.element.addEventListener("submit", (event) => {
      event.preventDefault();
      if (onSubmit) onSubmit(this.collect());
    });
    this.render();
  }

  render() {
    const envelope = h("fieldset", { className: "group" }, h("legend", {}, "基本信息"));
    for (const spec of ENVELOPE) {
      const schema = { type: "string", title: spec.title, maxLength: spec.maxLength, format: spec.format };
      let help = spec.help;
      if (spec.key === "occurred_on") {
        const source = this.detail.occurred_on_field;
        const title = source && this.detail.json_schema.properties[source]?.title;
        help = title ? `可留空：留空时取下方的“${title}”。不能晚于今天。` : "不能晚于今天。";
      }
      const required = spec.required && !(spec.key === "occurred_on" && this.detail.occurred_on_field);
      envelope.append(this.leaf(schema, spec.key, required, { help, identifier: spec.identifier }));
    }
    const data = h("fieldset", { className: "group" }, h("legend", {}, `${this.detail.name}信息`));
    const schema = this.detail.json_schema;
    const required = new Set(schema.required || []);
    for (const [key, property] of Object.entries(schema.properties || {})) {
      data.append(this.node(property, `data.${key}`, required.has(key)));
    }
    this.element.append(
      this.summary,
      h("p", { className: "help" }, "带 ", h("span", { className: "required-mark" }, "*"), " 的为必填项。"),
      envelope,
      data,
      h("div", { className: "actions" }, h("button", { type: "submit", className: "button-primary" }, "提交记录")),
    );
  }

  node(schema, path, required) {
    if (schema.type === "object") return this.objectNode(schema, path, required);
    if (schema.type === "array") return this.arrayNode(schema, path, required);
    return this.leaf(schema, path, required);
  }

  objectNode(schema, path, required) {
    const inner = new Set(schema.required || []);
    const legend = h("legend", {}, schema.title || path);
    if (required) legend.append(" ", h("span", { className: "required-mark", "aria-hidden": "true" }, "*"));
    const box = h("fieldset", { className: "subgroup" }, legend);
    const parts = h("div", { className: "inline-fields" });
    for (const [key, property] of Object.entries(schema.properties || {})) {
      parts.append(this.leaf(property, `${path}.${key}`, required && inner.has(key), {
        title: `${schema.title || ""}（${property.title || key}）`,
        shortTitle: property.title || key,
        defaultValue: property.enum && property.enum.includes("CNY") ? "CNY" : undefined,
      }));
    }
    box.append(parts);
    const errorId = `${pathId(path)}-error`;
    const error = h("p", { className: "field-error", id: errorId, hidden: true });
    box.append(error);
    this.fields.set(path, { title: schema.title || path, error, wrapper: box, inputs: [], kind: "object", schema });
    return box;
  }

  arrayNode(schema, path, required) {
    const items = schema.items || {};
    if (items.type === "string" && Array.isArray(items.enum)) {
      return this.checkboxGroup(schema, path, required);
    }
    if (items.type === "object") return this.repeatable(schema, path, required);
    return this.leaf(schema, path, required, {
      help: `${schema.description ? `${schema.description} ` : ""}多个值用“、”或逗号分开。`,
      list: true,
    });
  }

  checkboxGroup(schema, path, required) {
    const id = pathId(path);
    const legend = h("legend", { id: `${id}-legend` }, schema.title || path);
    if (required) legend.append(" ", h("span", { className: "required-mark", "aria-hidden": "true" }, "*"));
    const errorId = `${id}-error`;
    const box = h("fieldset", {
      className: "subgroup checkboxes",
      "aria-describedby": errorId,
      "aria-required": required ? "true" : undefined,
    }, legend);
    const inputs = schema.items.enum.map((value, index) => {
      const input = h("input", { type: "checkbox", id: `${id}-${index}`, value, name: path });
      box.append(h("label", { className: "checkbox", for: input.id }, input, ` ${value}`));
      return input;
    });
    const error = h("p", { className: "field-error", id: errorId, hidden: true });
    box.append(error);
    this.fields.set(path, { title: schema.title || path, error, wrapper: box, inputs, kind: "checkboxes", schema });
    for (const input of inputs) input.addEventListener("change", () => this.clearField(path));
    return box;
  }

  repeatable(schema, path, required) {
    const legend = h("legend", {}, schema.title || path);
    if (required) legend.append(" ", h("span", { className: "required-mark", "aria-hidden": "true" }, "*"));
    const rows = h("div", { className: "rows" });
    const errorId = `${pathId(path)}-error`;
    const error = h("p", { className: "field-error", id: errorId, hidden: true });
    const add = h("button", { type: "button", className: "button-light" }, `添加一项${schema.title || ""}`);
    // (The schema's description explains the file column; the rows here need none.)
    const box = h("fieldset", { className: "subgroup" }, legend, rows, add, error);
    const state = { schema, rows, count: 0 };
    this.arrays.set(path, state);
    this.fields.set(path, { title: schema.title || path, error, wrapper: box, inputs: [], kind: "rows", schema });
    add.addEventListener("click", () => {
      this.setRowCount(path, state.count + 1);
      const inputs = this.rowInputs(path, state.count - 1);
      if (inputs.length) inputs[0].focus();
    });
    this.setRowCount(path, required ? Math.max(1, schema.minItems || 0) : 0);
    return box;
  }

  rowInputs(path, index) {
    const prefix = `${path}[${index}].`;
    return [...this.fields.entries()]
      .filter(([key]) => key.startsWith(prefix))
      .flatMap(([, entry]) => entry.inputs);
  }

  /** Rebuild a repeatable list with `count` rows, keeping what was typed. */
  setRowCount(path, count) {
    const state = this.arrays.get(path);
    const kept = this.collectRows(path);
    for (const key of [...this.fields.keys()]) {
      if (key.startsWith(`${path}[`)) this.fields.delete(key);
    }
    state.rows.replaceChildren();
    state.count = count;
    const item = state.schema.items;
    const inner = new Set(item.required || []);
    for (let index = 0; index < count; index += 1) {
      const row = h("div", { className: "row-item" }, h("p", { className: "row-title" }, `第 ${index + 1} 项`));
      for (const [key, property] of Object.entries(item.properties || {})) {
        row.append(this.leaf(property, `${path}[${index}].${key}`, inner.has(key), {
          title: `${state.schema.title}第${index + 1}项（${property.title || key}）`,
          shortTitle: property.title || key,
        }));
      }
      const remove = h("button", { type: "button", className: "button-light" }, `删除第 ${index + 1} 项`);
      remove.addEventListener("click", () => {
        const rows = this.collectRows(path);
        rows.splice(index, 1);
        this.setRowCount(path, rows.length);
        this.fillRows(path, rows);
      });
      row.append(remove);
      state.rows.append(row);
    }
    this.fillRows(path, kept.slice(0, count));
  }

  collectRows(path) {
    const state = this.arrays.get(path);
    const rows = [];
    for (let index = 0; index < (state?.count || 0); index += 1) {
      const row = {};
      for (const key of Object.keys(state.schema.items.properties || {})) {
        const entry = this.fields.get(`${path}[${index}].${key}`);
        if (entry) row[key] = entry.inputs[0].value;
      }
      rows.push(row);
    }
    return rows;
  }

  fillRows(path, rows) {
    rows.forEach((row, index) => {
      for (const [key, value] of Object.entries(row || {})) {
        const entry = this.fields.get(`${path}[${index}].${key}`);
        if (entry) entry.inputs[0].value = value === undefined || value === null ? "" : String(value);
      }
    });
  }

  leaf(schema, path, required, options = {}) {
    const id = pathId(path);
    const title = options.shortTitle || schema.title || path;
    const helpId = `${id}-help`;
    const errorId = `${id}-error`;
    const statusId = `${id}-status`;
    const label = h("label", { for: id }, title);
    if (required) label.append(" ", h("span", { className: "required-mark", "aria-hidden": "true" }, "*"));
    const describedBy = [];
    const hints = [];
    if (options.help) hints.push(options.help);
    else if (schema.description && !schema.enum) hints.push(schema.description);
    if (schema.format === "date" && !options.help) hints.push("年-月-日");
    let input;
    const common = {
      id,
      name: path,
      required: required || undefined,
      "aria-required": required ? "true" : undefined,
    };
    if (Array.isArray(schema.enum)) {
      const names = enumLabels(schema);
      input = h("select", common, h("option", { value: "" }, "请选择"));
      for (const value of schema.enum) {
        const text = names[value] ? `${names[value]}（${value}）` : String(value);
        input.append(h("option", { value: String(value) }, text));
      }
      if (options.defaultValue) input.value = options.defaultValue;
    } else if (schema.type === "boolean") {
      input = h("select", common, h("option", { value: "" }, "不填"), h("option", { value: "true" }, "是"), h("option", { value: "false" }, "否"));
    } else if (schema.format === "date") {
      input = h("input", { ...common, type: "date" });
    } else if (schema.type === "string" && (schema.maxLength || 0) > 200) {
      input = h("textarea", { ...common, rows: 3, maxlength: schema.maxLength });
    } else {
      const numeric = schema.type === "integer" || (schema.pattern && schema.pattern.startsWith("^[0-9]"));
      input = h("input", {
        ...common,
        type: schema.format === "email" ? "email" : "text",
        inputmode: numeric ? (schema.type === "integer" ? "numeric" : "decimal") : undefined,
        maxlength: schema.maxLength,
        autocomplete: "off",
        spellcheck: options.identifier || schema.format === "uscc" ? "false" : undefined,
      });
      if (schema.type === "integer") {
        const range = [schema.minimum, schema.maximum].filter((v) => v !== undefined);
        hints.push(range.length === 2 ? `整数，${schema.minimum}–${schema.maximum}` : "整数");
      } else if (numeric) {
        hints.push("数字，可带小数点，如 30000 或 1250.50");
      }
    }
    const identifier = options.identifier
      || (schema.format === "uscc" ? "uscc" : schema.format === "registration-number" ? "registration" : null);
    if (identifier && !options.help) hints.push(identifier === "uscc" ? "18位统一社会信用代码，输入时即校验。" : "15位工商注册号，输入时即校验。");
    const wrapper = h("div", { className: "field" }, label, input);
    if (hints.length) {
      wrapper.append(h("p", { className: "help", id: helpId }, hints.join(" ")));
      describedBy.push(helpId);
    }
    const status = h("p", { className: "field-ok", id: statusId, hidden: true });
    const error = h("p", { className: "field-error", id: errorId, hidden: true });
    wrapper.append(status, error);
    describedBy.push(statusId, errorId);
    input.setAttribute("aria-describedby", describedBy.join(" "));
    const entry = {
      title: options.title || schema.title || path,
      error,
      status,
      wrapper,
      inputs: [input],
      kind: options.list ? "list" : "leaf",
      schema,
      identifier,
    };
    this.fields.set(path, entry);
    input.addEventListener("input", () => {
      this.clearField(path);
      if (identifier) this.checkIdentifier(entry, identifier);
    });
    input.addEventListener("change", () => this.clearField(path));
    return wrapper;
  }

  checkIdentifier(entry, kind) {
    const input = entry.inputs[0];
    const value = input.value;
    if (!value.trim()) {
      entry.status.hidden = true;
      return;
    }
    const result = checkIdentifier(kind, value);
    if (result.ok) {
      entry.status.textContent = `✓ 校验通过：${result.value}`;
      entry.status.hidden = false;
    } else {
      entry.status.hidden = true;
      this.markField(entry, result.message);
    }
  }

  // --- reading and filling ---------------------------------------------------

  collect() {
    const body = { category: this.detail.key };
    for (const spec of ENVELOPE) {
      const value = this.fields.get(spec.key).inputs[0].value.trim();
      if (value) body[spec.key] = value;
    }
    const data = this.collectObject(this.detail.json_schema, "data") || {};
    body.data = data;
    const source = this.detail.occurred_on_field;
    if (!body.occurred_on && source && typeof data[source] === "string") body.occurred_on = data[source];
    return body;
  }

  collectObject(schema, path) {
    const result = {};
    for (const [key, property] of Object.entries(schema.properties || {})) {
      const value = this.collectNode(property, `${path}.${key}`);
      if (!isEmpty(value)) result[key] = value;
    }
    return Object.keys(result).length ? result : undefined;
  }

  collectNode(schema, path) {
    const entry = this.fields.get(path);
    if (schema.type === "object") {
      // A preset currency alone does not make an amount.
      const typed = Object.entries(schema.properties || {}).some(([key, property]) => {
        const child = this.fields.get(`${path}.${key}`);
        return !property.enum && child && child.inputs[0].value.trim() !== "";
      });
      return typed ? this.collectObject(schema, path) : undefined;
    }
    if (schema.type === "array") {
      if (entry.kind === "checkboxes") return entry.inputs.filter((i) => i.checked).map((i) => i.value);
      if (entry.kind === "rows") {
        const state = this.arrays.get(path);
        const rows = [];
        for (let index = 0; index < state.count; index += 1) {
          const row = this.collectObject(schema.items, `${path}[${index}]`);
          if (row) rows.push(row);
        }
        return rows;
      }
      const text = entry.inputs[0].value.trim();
      if (!text) return undefined;
      return text.split(LIST_SEPARATORS).filter(Boolean).map((part) => this.typed(schema.items || {}, part));
    }
    const raw = entry.inputs[0].value;
    const value = typeof raw === "string" ? raw.trim() : raw;
    if (value === "") return undefined;
    return this.typed(schema, value);
  }

  typed(schema, value) {
    // What cannot be converted is sent as typed: the server names the mistake.
    if (schema.type === "integer") return /^-?\d+$/.test(value) ? Number(value) : value;
    if (schema.type === "number") return value !== "" && !Number.isNaN(Number(value)) ? Number(value) : value;
    if (schema.type === "boolean") return value === "true" ? true : value === "false" ? false : value;
    return value;
  }

  /** Fill the form from a record (a revision, or the category's example). */
  fill(record) {
    for (const [path, state] of this.arrays) {
      const rows = valueAt(record, path);
      this.setRowCount(path, Array.isArray(rows) ? rows.length : 0);
    }
    for (const [path, entry] of this.fields) {
      const value = valueAt(record, path);
      if (entry.kind === "object" || entry.kind === "rows") continue;
      if (entry.kind === "checkboxes") {
        const chosen = new Set(Array.isArray(value) ? value.map(String) : []);
        for (const input of entry.inputs) input.checked = chosen.has(input.value);
        continue;
      }
      const input = entry.inputs[0];
      if (Array.isArray(value)) input.value = value.join("、");
      else if (value === undefined || value === null) input.value = input.tagName === "SELECT" && entry.schema.enum?.includes("CNY") ? "CNY" : "";
      else input.value = String(value);
    }
    this.clearErrors();
    for (const [path, entry] of this.fields) {
      const kind = path === "uscc" ? "uscc" : path === "registration_number" ? "registration" : null;
      if (kind) this.checkIdentifier(entry, kind);
    }
  }

  // --- errors ----------------------------------------------------------------

  resolve(field) {
    let path = field;
    while (path) {
      if (this.fields.has(path)) return path;
      const parent = parentPath(path);
      if (parent === path) break;
      path = parent;
    }
    return null;
  }

  markField(entry, message) {
    entry.error.textContent = message;
    entry.error.hidden = false;
    entry.wrapper.classList.add("has-error");
    for (const input of entry.inputs) input.setAttribute("aria-invalid", "true");
    if (entry.inputs.length === 0) entry.wrapper.setAttribute("aria-invalid", "true");
  }

  clearField(path) {
    const entry = this.fields.get(path);
    if (!entry) return;
    entry.error.textContent = "";
    entry.error.hidden = true;
    entry.wrapper.classList.remove("has-error");
    for (const input of entry.inputs) input.removeAttribute("aria-invalid");
    entry.wrapper.removeAttribute("aria-invalid");
  }

  clearErrors() {
    for (const path of this.fields.keys()) this.clearField(path);
    this.summary.replaceChildren();
    this.summary.hidden = true;
  }

  /** Show a problem's errors next to their fields and in the summary; focus the summary. */
  showErrors(problem) {
    this.clearErrors();
    const errors = problem.errors.length
      ? problem.errors
      : [{ field: "", code: problem.code, message: problem.detail || problem.title }];
    const messages = new Map();
    const list = h("ul", {});
    for (const error of errors) {
      const path = this.resolve(error.field || "");
      const entry = path ? this.fields.get(path) : null;
      const text = errorLabel(error.code, error.message);
      let explained = errorText(error.code, error.message);
      if (entry && entry.identifier) {
        // The same check runs here: its Chinese message says which character is wrong.
        const local = checkIdentifier(entry.identifier, entry.inputs[0].value);
        if (!local.ok && local.code === error.code) explained = local.message;
      }
      if (entry) {
        const previous = messages.get(path);
        messages.set(path, previous ? `${previous}；${explained}` : explained);
        const target = entry.inputs[0];
        const link = h("a", { href: target ? `#${target.id}` : "#" }, `${entry.title}：${text}`);
        link.addEventListener("click", (event) => {
          event.preventDefault();
          (target || entry.wrapper.querySelector("input, select, textarea, button"))?.focus();
        });
        list.append(h("li", {}, link));
      } else {
        const where = error.field ? `${error.field}：` : "";
        list.append(h("li", {}, `${where}${explained}`));
      }
    }
    for (const [path, message] of messages) this.markField(this.fields.get(path), message);
    const count = errors.length;
    this.summary.append(
      h("h3", {}, problem.status === 422 ? `提交未通过，请修改以下 ${count} 处：` : `提交未通过：${problem.title || problem.code}`),
      list,
    );
    this.summary.hidden = false;
    this.summary.focus();
  }
}

/**
 * A small hand-made form (revocation, feedback) with the same error display as the
 * record form: field(key, title, control, options) adds a labelled field.
 */
export class SimpleForm {
  constructor(label) {
    this.fields = new Map();
    this.summary = h("div", { className: "error-summary", tabindex: "-1", hidden: true, role: "alert" });
    this.element = h("form", { className: "simple-form", novalidate: true, "aria-label": label }, this.summary);
  }

  field(key, title, control, { required = false, help = "" } = {}) {
    const id = control.id || pathId(key);
    control.id = id;
    control.name = key;
    if (required) {
      control.setAttribute("required", "");
      control.setAttribute("aria-required", "true");
    }
    const label = h("label", { for: id }, title);
    if (required) label.append(" ", h("span", { className: "required-mark", "aria-hidden": "true" }, "*"));
    const error = h("p", { className: "field-error", id: `${id}-error`, hidden: true });
    const wrapper = h("div", { className: "field" }, label, control);
    const described = [];
    if (help) {
      wrapper.append(h("p", { className: "help", id: `${id}-help` }, help));
      described.push(`${id}-help`);
    }
    wrapper.append(error);
    described.push(error.id);
    control.setAttribute("aria-describedby", described.join(" "));
    control.addEventListener("input", () => this.clearField(key));
    this.fields.set(key, { title, control, error, wrapper });
    this.element.append(wrapper);
    return wrapper;
  }

  clearField(key) {
    const entry = this.fields.get(key);
    entry.error.hidden = true;
    entry.error.textContent = "";
    entry.control.removeAttribute("aria-invalid");
    entry.wrapper.classList.remove("has-error");
  }

  clearErrors() {
    for (const key of this.fields.keys()) this.clearField(key);
    this.summary.hidden = true;
    this.summary.replaceChildren();
  }

  showErrors(problem) {
    this.clearErrors();
    const errors = problem.errors.length
      ? problem.errors
      : [{ field: "", code: problem.code, message: problem.detail || problem.title }];
    const list = h("ul", {});
    for (const error of errors) {
      let key = error.field || "";
      while (key && !this.fields.has(key) && parentPath(key) !== key) key = parentPath(key);
      const entry = this.fields.get(key);
      const text = errorLabel(error.code, error.message);
      const explained = errorText(error.code, error.message);
      if (entry) {
        entry.error.textContent = entry.error.textContent ? `${entry.error.textContent}；${explained}` : explained;
        entry.error.hidden = false;
        entry.control.setAttribute("aria-invalid", "true");
        entry.wrapper.classList.add("has-error");
        const link = h("a", { href: `#${entry.control.id}` }, `${entry.title}：${text}`);
        link.addEventListener("click", (event) => {
          event.preventDefault();
          entry.control.focus();
        });
        list.append(h("li", {}, link));
      } else {
        list.append(h("li", {}, explained));
      }
    }
    this.summary.append(h("h3", {}, `未能完成：${problem.title || problem.code}`), list);
    this.summary.hidden = false;
    this.summary.focus();
  }
}
