// The public portal: search, result list, enterprise view. Every piece of
// data goes into the page with textContent, never as HTML.
(function () {
  "use strict";

  const PAGE_SIZE = 10;
  const API_BASE_KEY = "ecips.publicity.apiBase";
  const STATUS_NAMES = {
    active: "存续", registered: "存续", operating: "存续",
    deregistered: "注销", revoked: "吊销", cancelled: "注销", moved_out: "迁出",
  };

  const $ = (id) => document.getElementById(id);
  const state = { q: "", page: 1, total: 0 };

  function apiBase() {
    const fromUrl = new URLSearchParams(window.location.search).get("api");
    const chosen = fromUrl || window.localStorage.getItem(API_BASE_KEY) || "";
    return chosen.replace(/\/+$/, "");
  }

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function showMessage(text) {
    const box = $("message");
    box.textContent = text || "";
    box.hidden = !text;
  }

  async function getJson(path) {
    let response;
    try {
      response = await fetch(apiBase() + path, { headers: { Accept: "application/json" } });
    } catch (err) {
      throw new Error("无法连接公示接口，请检查网络或接口地址。");
    }
    let body = null;
    try { body = await response.json(); } catch (err) { body = null; }
    if (response.status === 429) {
      const wait = response.headers.get("Retry-After") || "1";
      throw new Error("查询过于频繁，请 " + wait + " 秒后再试。");
    }
    if (response.status === 404) throw new Error("未找到该企业。");
    if (!response.ok) {
      const detail = body && (body.detail || body.title);
      throw new Error("查询失败" + (detail ? "：" + detail : "。"));
    }
    return body;
  }

  function badges(flags) {
    const nodes = [];
    if (flags && flags.serious_illegal) nodes.push(el("span", "严重违法失信", "badge"));
    if (flags && flags.abnormal_operation) nodes.push(el("span", "经营异常", "badge abnormal"));
    return nodes;
  }

  function statusName(status) {
    return STATUS_NAMES[status] || status || "";
  }

  // --- search ----------------------------------------------------------------

  async function search(q, page) {
    state.q = q;
    state.page = page;
    showMessage("");
    $("enterprise").hidden = true;
    const params = new URLSearchParams({ q: q, page: String(page), limit: String(PAGE_SIZE) });
    let result;
    try {
      result = await getJson("/v1/search?" + params.toString());
    } catch (err) {
      $("results").hidden = true;
      showMessage(err.message);
      return;
    }
    state.total = result.total;
    renderResults(result.items);
  }

  function renderResults(items) {
    const list = $("result-list");
    list.replaceChildren();
    $("results-summary").textContent = "共找到 " + state.total + " 家企业";
    for (const item of items) {
      const li = el("li");
      const title = el("div");
      const name = el("button", item.name, "name");
      name.type = "button";
      name.addEventListener("click", () => { window.location.hash = "e=" + encodeURIComponent(item.uscc); });
      title.append(name, ...badges(item.flags));
      const meta = el("p", null, "meta");
      meta.append(
        el("span", "统一社会信用代码：" + item.uscc),
        el("span", "法定代表人：" + (item.legal_representative || "—")),
        el("span", "登记状态：" + statusName(item.status)),
        el("span", "成立日期：" + (item.established_on || "—")),
      );
      li.append(title, meta);
      if (item.matched_name && item.matched_name !== item.name) {
        li.append(el("p", "曾用名：" + item.matched_name, "meta"));
      }
      list.append(li);
    }
    const pages = Math.max(1, Math.ceil(state.total / PAGE_SIZE));
    $("page-info").textContent = "第 " + state.page + " / " + pages + " 页";
    $("prev-page").disabled = state.page <= 1;
    $("next-page").disabled = state.page >= pages;
    $("results").hidden = false;
  }

  // --- enterprise ------------------------------------------------------------

  function fact(list, label, value) {
    if (value === undefined || value === null || value === "") return;
    list.append(el("dt", label), el("dd", value));
  }

  async function showEnterprise(uscc) {
    showMessage("");
    let profile;
    try {
      profile = await getJson("/v1/enterprises/" + encodeURIComponent(uscc));
    } catch (err) {
      showMessage(err.message);
      return;
    }
    $("results").hidden = true;
    $("enterprise-name").textContent = profile.name;
    $("enterprise-badges").replaceChildren(...badges(profile.flags));
    const facts = $("enterprise-facts");
    facts.replaceChildren();
    fact(facts, "统一社会信用代码", profile.uscc);
    fact(facts, "注册号", profile.registration_number);
    fact(facts, "法定代表人", profile.legal_representative);
    fact(facts, "类型", profile.enterprise_type);
    fact(facts, "注册资本", profile.registered_capital);
    fact(facts, "成立日期", profile.established_on);
    fact(facts, "登记状态", statusName(profile.status));
    fact(facts, "登记机关", profile.registration_authority);
    fact(facts, "住所", profile.address);
    fact(facts, "经营范围", profile.business_scope);
    if (profile.former_names.length) {
      fact(facts, "曾用名", profile.former_names.map((n) => n.name).join("；"));
    }
    if (profile.flags.abnormal_operation) {
      fact(facts, "列入经营异常名录", [profile.flags.abnormal_operation_since, profile.flags.abnormal_operation_reason].filter(Boolean).join(" "));
    }
    if (profile.flags.serious_illegal) {
      fact(facts, "列入严重违法失信名单", [profile.flags.serious_illegal_since, profile.flags.serious_illegal_reason].filter(Boolean).join(" "));
    }
    renderMeasures(profile.joint_measures);
    renderSections(profile);
    $("enterprise").hidden = false;
  }

  function renderMeasures(measures) {
    const list = $("measure-list");
    list.replaceChildren();
    for (const rule of measures) {
      const titles = rule.measures.map((m) => m.title).join("、");
      const period = (rule.since || "") + (rule.until ? " 至 " + rule.until : " 起");
      list.append(el("li", (rule.rule_title || rule.rule_id) + "（" + period + "）：" + titles));
    }
    $("enterprise-measures").hidden = measures.length === 0;
  }

  function renderSections(profile) {
    const list = $("section-list");
    list.replaceChildren();
    $("section-records").hidden = true;
    $("no-sections").hidden = profile.sections.length > 0;
    for (const section of profile.sections) {
      const button = el("button", section.name + "（" + section.count + "）");
      button.type = "button";
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", () => {
        for (const other of list.querySelectorAll("button")) other.setAttribute("aria-pressed", "false");
        button.setAttribute("aria-pressed", "true");
        showRecords(profile.uscc, section);
      });
      const li = el("li");
      li.append(button);
      list.append(li);
    }
  }

  async function showRecords(uscc, section) {
    let result;
    try {
      const params = new URLSearchParams({ category: section.key, limit: "50" });
      result = await getJson("/v1/enterprises/" + encodeURIComponent(uscc) + "/records?" + params.toString());
    } catch (err) {
      showMessage(err.message);
      return;
    }
    $("section-title").textContent = section.name + "（共 " + result.total + " 条）";
    const list = $("record-list");
    list.replaceChildren();
    for (const item of result.items) {
      const li = el("li");
      const dl = el("dl");
      const add = (label, value) => {
        if (value === undefined || value === null || value === "") return;
        dl.append(el("dt", label), el("dd", typeof value === "object" ? JSON.stringify(value) : value));
      };
      add("决定文书号", item.source_id);
      add("决定日期", item.occurred_on);
      add("部门", item.department);
      add("公示截止", item.publish_until);
      for (const [key, value] of Object.entries(item.data)) add(key, value);
      li.append(dl);
      list.append(li);
    }
    $("section-records").hidden = false;
  }

  // --- navigation ------------------------------------------------------------

  function route() {
    const params = new URLSearchParams(window.location.hash.slice(1));
    if (params.get("e")) {
      showEnterprise(params.get("e"));
    } else if (params.get("q")) {
      $("search-input").value = params.get("q");
      search(params.get("q"), Number(params.get("p")) || 1);
    }
  }

  function go(q, page) {
    const hash = "#" + new URLSearchParams({ q: q, p: String(page) }).toString();
    if (window.location.hash === hash) route(); else window.location.hash = hash;
  }

  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = $("search-input").value.trim();
    if (!q) { showMessage("请输入查询内容。"); return; }
    go(q, 1);
  });
  $("prev-page").addEventListener("click", () => go(state.q, state.page - 1));
  $("next-page").addEventListener("click", () => go(state.q, state.page + 1));
  $("back").addEventListener("click", () => {
    if (state.q) go(state.q, state.page); else window.history.back();
  });
  $("api-base").value = window.localStorage.getItem(API_BASE_KEY) || "";
  $("save-api-base").addEventListener("click", () => {
    window.localStorage.setItem(API_BASE_KEY, $("api-base").value.trim());
    showMessage("接口地址已保存。");
  });
  window.addEventListener("hashchange", route);
  route();
})();
