// The public portal: search, results, the enterprise page with its tabs, and
// a printable credit report. Every piece of data goes into the page through
// textContent (el/text below), never as HTML: a name like
// <script>alert(1)</script> shows as text.
(function () {
  "use strict";

  const PAGE_SIZE = 10;
  const ITEM_PAGE_SIZE = 20;
  const API_BASE_KEY = "ecips.publicity.apiBase";

  const $ = (id) => document.getElementById(id);
  const state = { search: null, page: 1, total: 0, exact: true, catalogue: null, profile: null };
  const VIEWS = ["results", "enterprise", "report", "about"];

  // --- helpers ----------------------------------------------------------------

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

  function show(view) {
    for (const name of VIEWS) $(name).hidden = name !== view;
    document.querySelector(".search-panel").hidden = view === "report";
  }

  function showMessage(text) {
    const box = $("message");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function setLoading(on) { $("loading").hidden = !on; }

  function formatNumber(n) { return Number(n).toLocaleString("zh-CN"); }

  async function getJson(path) {
    let response;
    try {
      response = await fetch(apiBase() + path, { headers: { Accept: "application/json" } });
    } catch (err) {
      throw new Error("无法连接公示接口，请检查网络或接口地址设置。");
    }
    let body = null;
    try { body = await response.json(); } catch (err) { body = null; }
    if (response.status === 429) {
      const wait = response.headers.get("Retry-After") || "1";
      throw new Error("查询过于频繁，请 " + wait + " 秒后再试。");
    }
    if (response.status === 404) throw new Error("未找到该企业，或该企业未在本系统登记。");
    if (!response.ok) {
      const error = body && body.errors && body.errors[0];
      const reason = {
        too_short: "请至少输入两个字。",
        too_long: "查询内容过长，请不超过 100 个字。",
        not_searchable: "请输入企业名称中的文字、数字或统一社会信用代码。",
        required: "请输入企业名称、统一社会信用代码或注册号。",
        query_too_broad: "符合条件的企业过多，只能翻阅前面的结果，请输入更完整的名称或增加筛选条件。",
        invalid_uscc: "统一社会信用代码格式不正确。",
      }[error && error.code] || (body && body.code === "search_timeout" ? "查询超时，请输入更完整的名称。" : null);
      throw new Error(reason || "查询失败，请稍后再试。");
    }
    return body;
  }

  function statusBadge(code, label) {
    if (!label) return null;
    return el("span", label, "badge status" + (code === "active" ? " active" : ""));
  }

  function warningBadges(flags) {
    const nodes = [];
    if (flags && flags.serious_illegal) nodes.push(el("span", "严重违法失信", "badge"));
    if (flags && flags.abnormal_operation) nodes.push(el("span", "经营异常", "badge abnormal"));
    return nodes;
  }

  // The matched fragment highlighted, still as text nodes.
  function highlighted(name, fragment) {
    const span = el("span");
    const at = fragment ? name.toLowerCase().indexOf(fragment.toLowerCase()) : -1;
    if (at < 0) { span.textContent = name; return span; }
    span.append(
      document.createTextNode(name.slice(0, at)),
      el("mark", name.slice(at, at + fragment.length)),
      document.createTextNode(name.slice(at + fragment.length)),
    );
    return span;
  }

  function metaLine(pairs) {
    const line = el("p", null, "meta");
    for (const [label, value] of pairs) {
      const part = el("span", label + "：");
      part.append(el("b", value || "—"));
      line.append(part);
    }
    return line;
  }

  // --- catalogue and statistics -----------------------------------------------

  async function loadCatalogue() {
    try {
      state.catalogue = await getJson("/v1/catalogue");
    } catch (err) {
      return;
    }
    const status = $("filter-status");
    for (const s of state.catalogue.statuses) {
      const option = el("option", s.name); option.value = s.code; status.append(option);
    }
    const district = $("filter-district");
    for (const d of state.catalogue.districts) {
      const option = el("option", d.name); option.value = d.code; district.append(option);
    }
  }

  async function loadStatistics() {
    try {
      const s = await getJson("/v1/statistics");
      const line = $("stats");
      line.replaceChildren(
        document.createTextNode("已公示企业 "), el("strong", formatNumber(s.enterprises)),
        document.createTextNode(" 户 · 列入经营异常名录 "), el("strong", formatNumber(s.abnormal_operation)),
        document.createTextNode(" 户 · 列入严重违法失信名单 "), el("strong", formatNumber(s.serious_illegal)),
        document.createTextNode(" 户 · 数据日期 " + s.as_of),
      );
    } catch (err) { /* the statistics line is optional */ }
  }

  // --- search -------------------------------------------------------------------

  function readForm() {
    const listed = [];
    if ($("filter-abnormal").checked) listed.push("abnormal_operation");
    if ($("filter-illegal").checked) listed.push("serious_illegal");
    return {
      q: $("search-input").value.trim(),
      status: $("filter-status").value,
      district: $("filter-district").value,
      person: $("filter-person").value.trim(),
      listed: listed,
    };
  }

  function writeForm(search) {
    $("search-input").value = search.q || "";
    $("filter-status").value = search.status || "";
    $("filter-district").value = search.district || "";
    $("filter-person").value = search.person || "";
    $("filter-abnormal").checked = search.listed.includes("abnormal_operation");
    $("filter-illegal").checked = search.listed.includes("serious_illegal");
    if (search.status || search.district || search.person || search.listed.length) $("filters").open = true;
  }

  function searchHash(search, page) {
    const params = new URLSearchParams();
    if (search.q) params.set("q", search.q);
    if (search.status) params.set("status", search.status);
    if (search.district) params.set("district", search.district);
    if (search.person) params.set("person", search.person);
    for (const l of search.listed) params.append("listed", l);
    params.set("p", String(page));
    return "#" + params.toString();
  }

  function searchFromHash(params) {
    return {
      q: params.get("q") || "",
      status: params.get("status") || "",
      district: params.get("district") || "",
      person: params.get("person") || "",
      listed: params.getAll("listed"),
    };
  }

  async function runSearch(search, page) {
    state.search = search;
    state.page = page;
    showMessage("");
    show("results");
    $("results").hidden = true;
    const params = new URLSearchParams({ page: String(page), limit: String(PAGE_SIZE) });
    if (search.q) params.set("q", search.q);
    if (search.status) params.set("status", search.status);
    if (search.district) params.set("district", search.district);
    if (search.person) params.set("legal_representative", search.person);
    for (const l of search.listed) params.append("listed", l);
    setLoading(true);
    let result;
    try {
      result = await getJson("/v1/search?" + params.toString());
    } catch (err) {
      showMessage(err.message);
      return;
    } finally {
      setLoading(false);
    }
    state.total = result.total;
    state.exact = result.total_exact;
    renderResults(result.items, search);
  }

  function renderResults(items, search) {
    const list = $("result-list");
    list.replaceChildren();
    const summary = $("results-summary");
    summary.replaceChildren(
      document.createTextNode(state.exact ? "共找到 " : "找到超过 "),
      el("strong", formatNumber(state.total)),
      document.createTextNode(" 户企业"),
    );
    const hint = $("results-hint");
    hint.hidden = state.exact;
    hint.textContent = state.exact ? "" : "结果较多，已按名称完全相同、名称开头相同优先列出。请输入更完整的企业名称或使用高级筛选。";
    if (items.length === 0) list.append(el("li", "没有找到符合条件的企业。请检查名称是否正确，或输入统一社会信用代码查询。", "empty"));
    for (const item of items) {
      const li = el("li");
      const flagged = item.flags && (item.flags.serious_illegal || item.flags.abnormal_operation);
      if (flagged) li.className = "flagged";
      const title = el("div");
      const name = el("button", null, "name");
      name.type = "button";
      name.append(highlighted(item.name, item.match === "name" ? search.q : ""));
      name.addEventListener("click", () => { window.location.hash = "e=" + encodeURIComponent(item.uscc); });
      title.append(name, ...warningBadges(item.flags));
      const badge = statusBadge(item.status_code, item.status);
      if (badge && item.status_code !== "active") title.append(badge);
      li.append(title, metaLine([
        ["统一社会信用代码", item.uscc],
        ["法定代表人", item.legal_representative],
        ["成立日期", item.established_on],
        ["登记状态", item.status],
        ["所属区县", item.district],
      ]));
      if (item.match === "former_name" && item.matched_name) {
        const former = el("p", null, "former");
        former.append(document.createTextNode("曾用名："), highlighted(item.matched_name, search.q));
        li.append(former);
      }
      list.append(li);
    }
    const reachable = state.exact ? state.total : Math.min(state.total, (state.catalogue && state.catalogue.search.broad_depth) || 200);
    const pages = Math.max(1, Math.ceil(reachable / PAGE_SIZE));
    $("page-info").textContent = "第 " + state.page + " / " + pages + " 页";
    $("prev-page").disabled = state.page <= 1;
    $("next-page").disabled = state.page >= pages;
    $("results").hidden = false;
  }

  // --- the enterprise page ----------------------------------------------------------

  function fact(list, label, value, wide) {
    list.append(el("dt", label));
    const dd = el("dd", value === undefined || value === null || value === "" ? "—" : value);
    if (wide) dd.className = "wide";
    list.append(dd);
  }

  function licenceFacts(profile) {
    const facts = el("dl", null, "facts");
    fact(facts, "统一社会信用代码", profile.uscc);
    fact(facts, "企业名称", profile.name);
    fact(facts, "类型", profile.enterprise_type);
    fact(facts, "法定代表人", profile.legal_representative);
    fact(facts, "注册资本", profile.registered_capital);
    fact(facts, "成立日期", profile.established_on);
    fact(facts, "登记机关", profile.registration_authority);
    fact(facts, "登记状态", profile.status);
    fact(facts, "注册号", profile.registration_number);
    fact(facts, "所属区县", profile.district);
    fact(facts, "住所", profile.address, true);
    fact(facts, "经营范围", profile.business_scope, true);
    if (profile.former_names.length) {
      fact(facts, "曾用名", profile.former_names.map((n) => n.name + (n.until ? "（至 " + n.until + "）" : "")).join("；"), true);
    }
    return facts;
  }

  function renderRecord(item) {
    const li = el("li");
    li.append(el("p", item.decision_number, "record-title"));
    const meta = el("p", null, "record-meta");
    meta.append(
      el("span", "决定日期：" + item.decided_on),
      el("span", "来源部门：" + (item.department_name || item.department)),
      el("span", item.publish_until ? "公示至：" + item.publish_until : "长期公示"),
    );
    li.append(meta);
    const dl = el("dl");
    for (const f of item.fields) dl.append(el("dt", f.label), el("dd", f.value));
    li.append(dl);
    return li;
  }

  async function loadRecords(uscc, category, container, page) {
    const params = new URLSearchParams({ category: category, page: String(page), limit: String(ITEM_PAGE_SIZE) });
    const result = await getJson("/v1/enterprises/" + encodeURIComponent(uscc) + "/records?" + params.toString());
    let list = container.querySelector("ol.records");
    if (!list) { list = el("ol", null, "records"); container.append(list); }
    for (const item of result.items) list.append(renderRecord(item));
    const old = container.querySelector(".more");
    if (old) old.remove();
    if (page * ITEM_PAGE_SIZE < result.total) {
      const more = el("button", "加载更多（共 " + result.total + " 条）", "button more");
      more.type = "button";
      more.addEventListener("click", () => loadRecords(uscc, category, container, page + 1).catch((err) => showMessage(err.message)));
      container.append(more);
    }
    return result.total;
  }

  async function renderCategories(profile, categories, panel, skipEmpty, headings = true) {
    const names = {};
    for (const s of (state.catalogue ? state.catalogue.sections : [])) names[s.key] = s.name;
    const counts = {};
    for (const s of profile.sections) counts[s.key] = s.count;
    for (const category of categories) {
      if (skipEmpty && !counts[category]) continue;
      const box = el("div", null, "section-box");
      if (headings) box.append(el("h3", (names[category] || category) + "（" + (counts[category] || 0) + "）"));
      if (!counts[category]) { box.append(el("p", "暂无公示信息。", "empty")); panel.append(box); continue; }
      panel.append(box);
      await loadRecords(profile.uscc, category, box, 1);
    }
  }

  function listTable(entries) {
    const table = el("table", null, "list-table");
    const head = el("tr");
    for (const h of ["序号", "列入原因", "列入日期", "作出决定机关（列入）", "移出原因", "移出日期", "作出决定机关（移出）"]) head.append(el("th", h));
    table.append(head);
    entries.forEach((entry, index) => {
      const row = el("tr");
      const listing = entry.listing, removal = entry.removal;
      const field = (item, key) => {
        if (!item) return "—";
        const f = item.fields.find((x) => x.key === key);
        return f ? f.value : "—";
      };
      row.append(
        el("td", String(index + 1)),
        el("td", listing ? field(listing, "reason") : "（列入信息未公示）"),
        el("td", listing ? listing.decided_on : "—", "date"),
        el("td", listing ? field(listing, "authority") : "—"),
        el("td", removal ? field(removal, "reason") : "—"),
        el("td", removal ? removal.decided_on : "—", "date"),
        el("td", removal ? field(removal, "authority") : "—"),
      );
      table.append(row);
    });
    return table;
  }

  async function renderList(profile, key, panel) {
    const result = await getJson("/v1/enterprises/" + encodeURIComponent(profile.uscc) + "/lists/" + encodeURIComponent(key) + "?limit=50");
    panel.append(el("h3", result.name + "信息（" + result.total + "）"));
    if (result.total === 0) { panel.append(el("p", "该企业未被列入" + result.name + "。", "empty")); return; }
    panel.append(listTable(result.items));
  }

  function renderMeasures(profile, panel) {
    panel.append(el("h3", "正在执行的联合惩戒措施（" + profile.joint_measures.length + "）"));
    if (profile.joint_measures.length === 0) { panel.append(el("p", "暂无正在执行的联合惩戒措施。", "empty")); return; }
    const list = el("ul", null, "measures");
    for (const rule of profile.joint_measures) {
      const li = el("li");
      const period = (rule.since || "") + (rule.until ? " 至 " + rule.until : " 起");
      li.append(el("strong", rule.rule_title || rule.rule_id), el("span", "（" + period + "）"));
      if (rule.legal_basis) li.append(el("p", "依据：" + rule.legal_basis, "record-meta"));
      const measures = el("ul");
      for (const m of rule.measures) measures.append(el("li", m.title + "——实施部门：" + (m.department_name || m.department)));
      li.append(measures);
      list.append(li);
    }
    panel.append(list);
  }

  async function showTab(profile, tab) {
    for (const button of $("tab-list").querySelectorAll("button")) {
      button.setAttribute("aria-selected", String(button.dataset.tab === tab.key));
    }
    const panel = $("tab-panel");
    panel.replaceChildren();
    panel.setAttribute("aria-label", tab.name);
    try {
      if (tab.master) {
        panel.append(el("h3", "营业执照信息"), licenceFacts(profile));
        await renderCategories(profile, tab.categories.filter((c) => c !== "registration"), panel, false);
      } else if (tab.list_key) {
        await renderList(profile, tab.list_key, panel);
      } else if (tab.measures) {
        renderMeasures(profile, panel);
      } else {
        await renderCategories(profile, tab.categories, panel, tab.key === "other");
        if (tab.key === "other" && tab.count === 0) panel.append(el("p", "暂无其他公示信息。", "empty"));
      }
    } catch (err) {
      showMessage(err.message);
    }
  }

  async function showEnterprise(uscc, tabKey) {
    showMessage("");
    let profile;
    setLoading(true);
    try {
      profile = state.profile && state.profile.uscc === uscc ? state.profile : await getJson("/v1/enterprises/" + encodeURIComponent(uscc));
    } catch (err) {
      showMessage(err.message);
      return;
    } finally {
      setLoading(false);
    }
    state.profile = profile;
    show("enterprise");
    document.title = profile.name + " - 企业信用信息公示系统（重庆）";
    $("enterprise-name").textContent = profile.name;
    const badges = [statusBadge(profile.status_code, profile.status), ...warningBadges(profile.flags)].filter(Boolean);
    if (profile.joint_measures.length) badges.push(el("span", "联合惩戒对象", "badge"));
    $("enterprise-badges").replaceChildren(...badges);
    $("enterprise-summary").replaceChildren(
      el("span", "统一社会信用代码：" + profile.uscc),
      el("span", "法定代表人：" + (profile.legal_representative || "—")),
      el("span", "成立日期：" + (profile.established_on || "—")),
    );
    $("report-link").href = "#report=" + encodeURIComponent(profile.uscc);
    const alert = $("enterprise-alert");
    const warnings = [];
    if (profile.flags.serious_illegal) warnings.push("该企业已被列入严重违法失信名单" + (profile.flags.serious_illegal_since ? "（" + profile.flags.serious_illegal_since + "）" : "") + "。");
    if (profile.flags.abnormal_operation) warnings.push("该企业已被列入经营异常名录" + (profile.flags.abnormal_operation_since ? "（" + profile.flags.abnormal_operation_since + "）" : "") + (profile.flags.abnormal_operation_reason ? "：" + profile.flags.abnormal_operation_reason : "") + "。");
    if (profile.joint_measures.length) warnings.push("对该企业正在执行 " + profile.joint_measures.length + " 项联合惩戒措施。");
    alert.textContent = warnings.join(" ");
    alert.hidden = warnings.length === 0;
    const tabs = $("tab-list");
    tabs.replaceChildren();
    for (const tab of profile.tabs) {
      const button = el("button");
      button.type = "button";
      button.setAttribute("role", "tab");
      button.dataset.tab = tab.key;
      button.append(document.createTextNode(tab.name));
      if (!tab.master) button.append(el("span", String(tab.count), "count" + (tab.count ? " nonzero" : "")));
      button.addEventListener("click", () => {
        window.location.hash = "e=" + encodeURIComponent(profile.uscc) + "&tab=" + encodeURIComponent(tab.key);
      });
      tabs.append(button);
    }
    const tab = profile.tabs.find((t) => t.key === tabKey) || profile.tabs[0];
    await showTab(profile, tab);
  }

  // --- the printable credit report ------------------------------------------------

  async function showReport(uscc) {
    showMessage("");
    setLoading(true);
    let profile;
    try {
      profile = await getJson("/v1/enterprises/" + encodeURIComponent(uscc));
    } catch (err) {
      setLoading(false);
      showMessage(err.message);
      return;
    }
    state.profile = profile;
    show("report");
    document.title = profile.name + " - 企业信用报告";
    $("report-meta").textContent = profile.name + " · 统一社会信用代码 " + profile.uscc + " · 报告日期 " + profile.as_of;
    const body = $("report-body");
    body.replaceChildren();
    const summary = el("section");
    summary.append(el("h3", "一、基本信息"), licenceFacts(profile));
    body.append(summary);
    const warnings = el("section");
    warnings.append(el("h3", "二、警示信息"));
    const lines = el("ul");
    lines.append(el("li", profile.flags.serious_illegal ? "列入严重违法失信名单（" + (profile.flags.serious_illegal_since || "") + "）" : "未列入严重违法失信名单"));
    lines.append(el("li", profile.flags.abnormal_operation ? "列入经营异常名录（" + (profile.flags.abnormal_operation_since || "") + "）" : "未列入经营异常名录"));
    lines.append(el("li", profile.joint_measures.length ? "正在执行联合惩戒措施 " + profile.joint_measures.length + " 项" : "无正在执行的联合惩戒措施"));
    warnings.append(lines);
    body.append(warnings);
    const numerals = ["三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二", "十三", "十四", "十五", "十六", "十七", "十八"];
    let n = 0;
    const empty = [];
    try {
      for (const tab of profile.tabs) {
        if (tab.master) {
          const changes = tab.categories.filter((c) => c !== "registration" && profile.sections.some((s) => s.key === c));
          if (changes.length === 0) continue;
          const section = el("section");
          section.append(el("h3", numerals[n++] + "、登记事项"));
          body.append(section);
          await renderCategories(profile, changes, section, true);
          continue;
        }
        if (tab.count === 0) { empty.push(tab.name); continue; }
        const section = el("section");
        section.append(el("h3", numerals[n++] + "、" + tab.name + "（" + tab.count + "）"));
        body.append(section);
        if (tab.list_key) {
          const result = await getJson("/v1/enterprises/" + encodeURIComponent(uscc) + "/lists/" + encodeURIComponent(tab.list_key) + "?limit=50");
          section.append(listTable(result.items));
        } else if (tab.measures) {
          const inner = el("div"); renderMeasures(profile, inner); inner.firstChild.remove(); section.append(inner);
        } else {
          await renderCategories(profile, tab.categories, section, true, tab.categories.length > 1);
        }
      }
      if (empty.length) {
        const section = el("section");
        section.append(el("h3", numerals[n++] + "、无公示信息的项目"), el("p", empty.join("、") + "：截至报告日期无公示信息。"));
        body.append(section);
      }
    } catch (err) {
      showMessage(err.message);
    } finally {
      setLoading(false);
    }
  }

  // --- navigation ----------------------------------------------------------------------

  function markNav(key) {
    for (const a of document.querySelectorAll(".top-nav a")) {
      if (a.dataset.nav === key) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
  }

  function route() {
    const raw = window.location.hash.slice(1);
    const params = new URLSearchParams(raw);
    showMessage("");
    if (raw === "about") { markNav("about"); show("about"); return; }
    if (params.get("report")) { markNav(""); showReport(params.get("report")); return; }
    if (params.get("e")) { markNav(""); showEnterprise(params.get("e"), params.get("tab")); return; }
    if (params.get("list")) {
      const key = params.get("list");
      markNav(key);
      const search = { q: "", status: "", district: "", person: "", listed: [key] };
      writeForm(search);
      runSearch(search, 1);
      return;
    }
    const search = searchFromHash(params);
    if (search.q || search.person || search.listed.length) {
      markNav("home");
      writeForm(search);
      runSearch(search, Number(params.get("p")) || 1);
      return;
    }
    markNav("home");
    show("results");
    $("results").hidden = true;
  }

  function go(search, page) {
    const hash = searchHash(search, page);
    if (window.location.hash === hash) route(); else window.location.hash = hash;
  }

  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const search = readForm();
    if (!search.q && !search.person && !search.listed.length) { showMessage("请输入企业名称、统一社会信用代码或注册号。"); return; }
    if (search.q && search.q.length < 2) { showMessage("请至少输入两个字。"); return; }
    go(search, 1);
  });
  $("prev-page").addEventListener("click", () => go(state.search, state.page - 1));
  $("next-page").addEventListener("click", () => go(state.search, state.page + 1));
  $("back").addEventListener("click", () => {
    if (state.search) go(state.search, state.page); else window.location.hash = "";
  });
  $("report-back").addEventListener("click", () => {
    const uscc = state.profile ? state.profile.uscc : "";
    window.location.hash = uscc ? "e=" + encodeURIComponent(uscc) : "";
  });
  $("print-button").addEventListener("click", () => window.print());
  $("api-base").value = window.localStorage.getItem(API_BASE_KEY) || "";
  $("save-api-base").addEventListener("click", () => {
    window.localStorage.setItem(API_BASE_KEY, $("api-base").value.trim());
    showMessage("接口地址已保存，刷新页面后生效。");
  });
  $("docs-link").href = (apiBase() || ".") + "/docs";
  window.addEventListener("hashchange", route);
  loadCatalogue().then(() => { loadStatistics(); route(); });
})();
