// The workbench shell: sign-in with a department token, who is signed in, the tabs.
// Each tab's panel lives in its own module and is built when first opened.

import { ApiError, api, decodeTokenClaims, loadConfig, session } from "./api.js";
import { byId, clear, formatDateTime, h } from "./dom.js";
import { SCOPE_LABELS } from "./labels.js";
import { mountBatch } from "./batch.js";
import { mountDashboard } from "./dashboard.js";
import { mountEntry } from "./entry.js";
import { mountTasks } from "./tasks.js";

const PANELS = {
  "tab-entry": mountEntry,
  "tab-batch": mountBatch,
  "tab-tasks": mountTasks,
  "tab-dashboard": mountDashboard,
};

const state = { me: null, mounted: new Set(), catalogue: null };

export function flash(message, kind = "info") {
  const box = byId("flash");
  box.textContent = message;
  box.className = `flash flash-${kind}`;
  box.hidden = !message;
}

function cleanToken(text) {
  return text.trim().replace(/^bearer\s+/i, "").trim();
}

/** The categories (and their names) this department may submit, loaded once. */
async function catalogue() {
  if (!state.catalogue) {
    const [categories, departments] = await Promise.all([api("/v1/categories"), api("/v1/departments")]);
    const names = Object.fromEntries(categories.body.items.map((c) => [c.key, c.name]));
    const departmentNames = Object.fromEntries(departments.body.items.map((d) => [d.code, d.name]));
    const own = new Set(state.me.categories);
    state.catalogue = {
      categories: categories.body.items.filter((c) => own.has(c.key)),
      names,
      departmentNames,
      details: new Map(),
      async detail(key) {
        if (!this.details.has(key)) this.details.set(key, (await api(`/v1/categories/${encodeURIComponent(key)}`)).body);
        return this.details.get(key);
      },
    };
  }
  return state.catalogue;
}

function context() {
  return {
    me: state.me,
    has: (scope) => state.me.scopes.some((s) => s.key === scope),
    catalogue,
    flash,
  };
}

// --- sign-in and sign-out -----------------------------------------------------

function showSignIn(message) {
  state.me = null;
  state.catalogue = null;
  state.mounted.clear();
  for (const panel of document.querySelectorAll("[role=tabpanel]")) clear(panel).hidden = true;
  byId("workbench").hidden = true;
  byId("identity").hidden = true;
  byId("sign-in").hidden = false;
  const error = byId("token-error");
  const input = byId("token-input");
  input.value = "";
  if (message) {
    error.textContent = message;
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
  } else {
    error.hidden = true;
    input.removeAttribute("aria-invalid");
  }
  input.focus();
}

function tokenProblem(error, token) {
  if (error.code === "token_expired") {
    const claims = decodeTokenClaims(token);
    const when = claims && claims.exp ? `（${formatDateTime(claims.exp * 1000)}）` : "";
    return `令牌已过期${when}，请向系统管理员重新申领。`;
  }
  if (error.status === 401) return "令牌无效：请检查是否复制完整，或向系统管理员重新申领。";
  if (error.status === 0) return error.detail;
  return `无法验证令牌：${error.detail || error.title || error.code}`;
}

async function signIn(token) {
  const me = await api("/v1/me", { token, quiet401: true });
  session.signIn(token);
  state.me = me.body;
  showWorkbench();
}

function showWorkbench() {
  const me = state.me;
  byId("sign-in").hidden = true;
  byId("workbench").hidden = false;
  byId("identity").hidden = false;
  const name = me.department_name || "（未登记在部门目录中的部门）";
  byId("identity-department").textContent = `${name} · ${me.department}`;
  byId("who-title").textContent = `${name}，您好`;
  byId("who-code").textContent = me.department;
  byId("who-expiry").textContent = formatDateTime(me.expires_at);
  const scopes = clear(byId("who-scopes"));
  for (const scope of me.scopes) {
    scopes.append(h("li", {}, h("code", {}, scope.key), " ", SCOPE_LABELS[scope.key] || scope.description));
  }
  if (!me.scopes.length) scopes.append(h("li", {}, "没有任何权限"));
  const tabs = [...document.querySelectorAll("[role=tab]")];
  let first = null;
  for (const tab of tabs) {
    const allowed = tab.dataset.scope.split(" ").some((scope) => me.scopes.some((s) => s.key === scope));
    tab.hidden = !allowed;
    if (allowed && !first) first = tab;
  }
  byId("no-tabs").hidden = Boolean(first);
  const remembered = byId(session.recall("tab", ""));
  const chosen = remembered && !remembered.hidden ? remembered : first;
  if (chosen) selectTab(chosen, false);
  byId("main").focus();
}

// --- tabs (WAI-ARIA tabs pattern: arrows, Home and End move between tabs) ----

function visibleTabs() {
  return [...document.querySelectorAll("[role=tab]")].filter((tab) => !tab.hidden);
}

function selectTab(tab, focus = true) {
  for (const other of visibleTabs()) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    byId(other.getAttribute("aria-controls")).hidden = !selected;
  }
  session.remember("tab", tab.id);
  if (focus) tab.focus();
  if (!state.mounted.has(tab.id)) {
    state.mounted.add(tab.id);
    const panel = byId(tab.getAttribute("aria-controls"));
    PANELS[tab.id](panel, context()).catch((error) => {
      panel.append(h("p", { className: "flash flash-error", role: "alert" }, `加载失败：${error.detail || error.message}`));
    });
  }
}

function onTabKey(event) {
  const tabs = visibleTabs();
  const index = tabs.indexOf(event.currentTarget);
  let next = null;
  if (event.key === "ArrowRight") next = tabs[(index + 1) % tabs.length];
  else if (event.key === "ArrowLeft") next = tabs[(index - 1 + tabs.length) % tabs.length];
  else if (event.key === "Home") next = tabs[0];
  else if (event.key === "End") next = tabs[tabs.length - 1];
  if (next) {
    event.preventDefault();
    selectTab(next);
  }
}

// --- start --------------------------------------------------------------------

async function start() {
  await loadConfig();
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", onTabKey);
  }
  byId("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = cleanToken(byId("token-input").value);
    if (!token) {
      showSignIn("请粘贴访问令牌。");
      return;
    }
    try {
      await signIn(token);
      flash("");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showSignIn(tokenProblem(error, token));
    }
  });
  byId("sign-out").addEventListener("click", () => {
    session.signOut();
    showSignIn();
    flash("已退出登录，令牌已从本浏览器清除。", "info");
  });
  window.addEventListener("workbench:unauthorized", (event) => {
    const token = session.token || "";
    session.signOut();
    showSignIn(tokenProblem(event.detail, token));
  });
  const token = session.token;
  if (!token) {
    showSignIn();
    return;
  }
  try {
    await signIn(token);
  } catch (error) {
    session.signOut();
    showSignIn(error instanceof ApiError ? tokenProblem(error, token) : String(error));
  }
}

start();
