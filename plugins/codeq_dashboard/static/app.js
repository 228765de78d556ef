/* codeq dashboard: vanilla JavaScript, no dependencies, no build step.
 *
 * Every action is a call to the public HTTP API with the admin token the
 * operator gave (kept in sessionStorage). Data from the server is only ever
 * inserted with textContent / attributes, never as HTML.
 */
"use strict";

(() => {
  const API = new URL("../v1/codeq/", location.href).pathname;
  const DEV_TOKEN_URL = new URL("dev-token", location.href).pathname;
  const POLL_MS = 2000;
  const RATE_WINDOW_S = 20;
  const HISTORY_S = 120;
  const MIN_SPARK_S = 60;
  const K_TOKEN = "codeq.dashboard.token";
  const K_SOURCE = "codeq.dashboard.tokenSource";
  const K_NO_DEV = "codeq.dashboard.noDevToken";
  const STATUSES = ["PENDING", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED"];
  const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
  const REDRIVE_ALL_BATCH = 100000;

  const $ = (sel) => document.querySelector(sel);
  const main = $("#main");

  // ---------------------------------------------------------------- DOM helpers

  /** h("a", {href, class, text, onclick, dataset}, ...children): never parses HTML. */
  function h(tag, props, ...children) {
    const el = tag.includes(":") ? document.createElementNS("http://www.w3.org/2000/svg", tag.split(":")[1])
                                 : document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.setAttribute("class", value);
      else if (key === "text") el.textContent = String(value);
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "checked" || key === "disabled" || key === "value") el[key] = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  /** Re-render `fn` without losing keyboard focus or open <details> (matched by data-key). */
  function keepState(root, fn) {
    const active = document.activeElement;
    const focusKey = active && root.contains(active) ? active.dataset.key : undefined;
    const open = new Set([...root.querySelectorAll("details[open][data-key]")].map((d) => d.dataset.key));
    fn();
    for (const d of root.querySelectorAll("details[data-key]")) if (open.has(d.dataset.key)) d.open = true;
    if (focusKey) {
      const again = [...root.querySelectorAll("[data-key]")].find((el) => el.dataset.key === focusKey);
      if (again) again.focus({ preventScroll: true });
    }
  }

  const taskHref = (id) => "#/tasks/" + encodeURIComponent(id);
  const queueHref = (command) => "#/queues/" + encodeURIComponent(command);
  const fmtInt = (n) => (typeof n === "number" ? n.toLocaleString() : "–");

  function fmtTime(iso) {
    if (!iso) return h("span", { class: "muted", text: "—" });
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return h("span", { text: iso });
    const now = new Date();
    const options = { hour: "2-digit", minute: "2-digit", second: "2-digit" };
    if (date.toDateString() !== now.toDateString()) Object.assign(options, { month: "short", day: "numeric" });
    if (date.getFullYear() !== now.getFullYear()) options.year = "numeric";
    return h("time", { datetime: iso, title: iso },
      h("span", { class: "abs", text: date.toLocaleString(undefined, options) }),
      h("span", { class: "muted rel", dataset: { rel: iso }, text: relative(date) }));
  }

  function relative(date) {
    const s = Math.round((date.getTime() - Date.now()) / 1000);
    const abs = Math.abs(s);
    let text;
    if (abs < 2) return "now";
    if (abs < 60) text = abs + " s";
    else if (abs < 3600) text = Math.floor(abs / 60) + " min " + (abs % 60) + " s";
    else if (abs < 86400) text = Math.floor(abs / 3600) + " h " + Math.floor((abs % 3600) / 60) + " min";
    else text = Math.floor(abs / 86400) + " d " + Math.floor((abs % 86400) / 3600) + " h";
    return s < 0 ? text + " ago" : "in " + text;
  }

  function json(value, indent) {
    try {
      const text = JSON.stringify(value, null, indent);
      return text === undefined ? String(value) : text;
    } catch (err) {
      return String(value);
    }
  }

  function preview(value, max = 96) {
    const text = json(value);
    return text.length > max ? text.slice(0, max - 1) + "…" : text;
  }

  function statusBadge(status) {
    const known = STATUSES.includes(status) ? status.toLowerCase().replace("_", "-") : "unknown";
    return h("span", { class: "badge status status-" + known, text: (status || "?").replace("_", " ") });
  }

  function button(label, onclick, { kind = "", key, disabled = false, title } = {}) {
    return h("button", { type: "button", class: ("btn " + kind).trim(), onclick, disabled, title,
                         dataset: key ? { key } : undefined }, label);
  }

  /** Disable `btn` while `work` runs; report a failure in the error banner; then
   * `settle()` (which may disable the button again, e.g. when nothing is left to do). */
  async function busy(btn, work, settle) {
    btn.disabled = true;
    btn.setAttribute("aria-busy", "true");
    try {
      return await work();
    } catch (err) {
      report(err);
      return undefined;
    } finally {
      btn.disabled = false;
      btn.removeAttribute("aria-busy");
      if (settle) settle();
    }
  }

  // ---------------------------------------------------------------- notices

  function showError(message) {
    $("#notice-text").textContent = message;
    $("#notice").hidden = false;
  }

  function clearError() {
    $("#notice").hidden = true;
    $("#notice-text").textContent = "";
  }

  let toastTimer;
  function toast(message) {
    const el = $("#toast");
    el.textContent = message;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, 5000);
  }

  function report(err) {
    if (err instanceof SignedOut) return;
    showError(err && err.message ? err.message : String(err));
  }

  function confirmDialog({ title, body, confirm, danger = false }) {
    return new Promise((resolve) => {
      const before = document.activeElement;
      const cancel = h("button", { type: "button", class: "btn" }, "Cancel");
      const ok = h("button", { type: "button", class: "btn " + (danger ? "btn-danger" : "btn-primary") }, confirm);
      const dialog = h("dialog", { class: "dialog", "aria-labelledby": "dialog-title" },
        h("h2", { id: "dialog-title", text: title }),
        h("p", { text: body }),
        h("div", { class: "dialog-actions" }, cancel, ok));
      const done = (answer) => {
        dialog.close();
        dialog.remove();
        if (before && before.isConnected) before.focus();
        resolve(answer);
      };
      cancel.addEventListener("click", () => done(false));
      ok.addEventListener("click", () => done(true));
      dialog.addEventListener("cancel", (event) => { event.preventDefault(); done(false); });
      document.body.append(dialog);
      dialog.showModal();
      ok.focus();
    });
  }

  // ---------------------------------------------------------------- session and API

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  class SignedOut extends Error {}

  const session = {
    token: () => sessionStorage.getItem(K_TOKEN),
    source: () => sessionStorage.getItem(K_SOURCE),
    set(token, source) {
      sessionStorage.setItem(K_TOKEN, token);
      sessionStorage.setItem(K_SOURCE, source);
      if (source === "dev") sessionStorage.removeItem(K_NO_DEV);
      updateChrome();
    },
    clear() {
      sessionStorage.removeItem(K_TOKEN);
      sessionStorage.removeItem(K_SOURCE);
      updateChrome();
    },
  };

  let devAvailable = null; // unknown until asked once

  /** An admin token from a dev-mode server (loopback only); null when there is none. */
  async function fetchDevToken() {
    try {
      const res = await fetch(DEV_TOKEN_URL, { cache: "no-store", credentials: "omit" });
      devAvailable = res.ok;
      if (!res.ok) return null;
      const body = await res.json();
      return typeof body.token === "string" ? body.token : null;
    } catch (err) {
      devAvailable = false;
      return null;
    }
  }

  async function request(method, path, body, token) {
    const headers = { Authorization: "Bearer " + token, Accept: "application/json" };
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(API + path, init);
    } catch (err) {
      throw new ApiError(0, "Cannot reach the codeq server (" + err.message + ").");
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (err) { data = null; }
    }
    if (res.ok) return data;
    const message = data && typeof data.error === "string" && data.error
      ? data.error : ("HTTP " + res.status + " " + res.statusText).trim();
    throw new ApiError(res.status, message);
  }

  /** Call the API with the session's token; a 401 signs out (a dev token is renewed once). */
  async function api(method, path, body) {
    const token = session.token();
    if (!token) throw new SignedOut("not signed in");
    try {
      return await request(method, path, body, token);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
      if (session.source() === "dev") {
        const fresh = await fetchDevToken();
        if (fresh) {
          session.set(fresh, "dev");
          return request(method, path, body, fresh);
        }
      }
      session.clear();
      stopPolling();
      renderSignIn("The server refused the token: " + err.message);
      throw new SignedOut(err.message);
    }
  }

  function updateChrome() {
    const signedIn = Boolean(session.token());
    $("#signout").hidden = !signedIn;
    $("#lookup").hidden = !signedIn;
    $("#dev-badge").hidden = !(signedIn && session.source() === "dev");
    if (!signedIn) setLive(null);
  }

  // ---------------------------------------------------------------- polling

  let pollTimer = null;
  let pollGeneration = 0;
  let pollNow = null;

  /** Run `fn(alive)` now and every POLL_MS while this view is shown (skipped while the tab
   * is hidden, run at once when it shows again). One chain of timers per view; `alive()`
   * turns false once the user has moved on, so a late answer does not draw over a new page. */
  function poll(fn) {
    stopPolling();
    const generation = pollGeneration;
    let running = false;
    const tick = async () => {
      if (generation !== pollGeneration || running) return;
      running = true;
      clearTimeout(pollTimer);
      try {
        if (!document.hidden) {
          await fn(() => generation === pollGeneration);
          if (generation === pollGeneration) setLive(true);
        }
      } catch (err) {
        if (err instanceof SignedOut) return;
        setLive(false, err.message);
        if (err instanceof ApiError && err.status !== 0 && err.status !== 503) report(err);
      } finally {
        running = false;
      }
      if (generation === pollGeneration) pollTimer = setTimeout(tick, POLL_MS);
    };
    pollNow = tick;
    return tick();
  }

  function stopPolling() {
    pollGeneration += 1;
    clearTimeout(pollTimer);
    pollTimer = null;
    pollNow = null;
  }

  let lastUpdate = null;
  function setLive(ok, message) {
    const el = $("#live");
    if (ok === null) { el.textContent = ""; el.className = "live"; return; }
    if (ok) lastUpdate = new Date();
    el.className = "live " + (ok ? "live-ok" : "live-down");
    el.textContent = ok ? "Live" : "Offline";
    el.title = ok ? "Refreshed every " + POLL_MS / 1000 + " s; last at " + lastUpdate.toLocaleTimeString()
                  : "Last refresh failed: " + (message || "unknown error");
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && pollNow) pollNow();
  });

  // ---------------------------------------------------------------- queue depth history and rates

  const FIELDS = [
    ["ready", "Ready"],
    ["delayed", "Delayed"],
    ["inProgress", "In progress"],
    ["dlq", "DLQ"],
  ];
  const samples = new Map(); // command -> [{t, ready, delayed, inProgress, dlq}]

  function record(stats) {
    const t = performance.now() / 1000;
    const list = samples.get(stats.command) || [];
    list.push({ t, ready: stats.ready, delayed: stats.delayed, inProgress: stats.inProgress, dlq: stats.dlq });
    while (list.length && t - list[0].t > HISTORY_S) list.shift();
    samples.set(stats.command, list);
  }

  /** Net change per second of `field` over the last RATE_WINDOW_S seconds, or null. */
  function rate(command, field) {
    const list = samples.get(command) || [];
    if (list.length < 2) return null;
    const last = list[list.length - 1];
    const first = list.find((s) => last.t - s.t <= RATE_WINDOW_S) || list[0];
    const dt = last.t - first.t;
    if (dt < 1.5) return null;
    return (last[field] - first[field]) / dt;
  }

  function fmtRate(r) {
    if (r === null) return { text: "–", cls: "rate", title: "measuring: rates need a few seconds of samples" };
    const sign = r > 0 ? "+" : r < 0 ? "−" : "";
    const abs = Math.abs(r);
    if (abs >= 1) return { text: sign + abs.toFixed(abs >= 10 ? 0 : 1) + "/s", cls: r > 0 ? "rate rate-up" : "rate rate-down" };
    if (abs * 60 >= 0.5) return { text: sign + (abs * 60).toFixed(0) + "/min", cls: r > 0 ? "rate rate-up" : "rate rate-down" };
    return { text: "steady", cls: "rate" };
  }

  function rateEl(command, field) {
    const r = fmtRate(rate(command, field));
    return h("span", { class: r.cls, title: r.title || "net change over the last " + RATE_WINDOW_S + " s", text: r.text });
  }

  /** An inline SVG sparkline of backlog (ready + delayed + in progress) and DLQ. */
  function sparkline(command, width = 120, height = 28) {
    const list = samples.get(command) || [];
    const svg = h("svg:svg", { class: "spark", viewBox: `0 0 ${width} ${height}`, width, height,
                               preserveAspectRatio: "none", role: "img",
                               "aria-label": "backlog and DLQ depth " + spanText(command) });
    svg.append(h("svg:line", { class: "spark-axis", x1: 0, y1: height - 1, x2: width, y2: height - 1 }));
    if (list.length < 2) return svg;
    const last = list[list.length - 1].t;
    const span = Math.max(last - list[0].t, MIN_SPARK_S);
    const first = last - span;
    const backlog = list.map((s) => s.ready + s.delayed + s.inProgress);
    const max = Math.max(1, ...backlog, ...list.map((s) => s.dlq));
    const point = (s, v) => {
      const x = ((s.t - first) / span) * width;
      const y = height - 2 - (v / max) * (height - 4);
      return x.toFixed(1) + "," + y.toFixed(1);
    };
    svg.append(h("svg:polyline", { class: "spark-backlog", points: list.map((s, i) => point(s, backlog[i])).join(" ") }));
    if (list.some((s) => s.dlq > 0)) {
      svg.append(h("svg:polyline", { class: "spark-dlq", points: list.map((s) => point(s, s.dlq)).join(" ") }));
    }
    return svg;
  }

  /** What the sparkline covers: at least a minute, at most HISTORY_S. */
  function spanText(command) {
    const list = samples.get(command) || [];
    const span = list.length > 1 ? list[list.length - 1].t - list[0].t : 0;
    return span > MIN_SPARK_S ? "over the last " + Math.round(span / 60 * 2) / 2 + " min" : "over the last minute";
  }

  // ---------------------------------------------------------------- views

  function setTitle(text) {
    document.title = text + " · codeq";
  }

  function pageHead(title, ...extra) {
    return h("div", { class: "page-head" }, h("h1", { tabindex: "-1", text: title }), ...extra);
  }

  function renderSignIn(message) {
    stopPolling();
    setTitle("Sign in");
    const input = h("input", { id: "token-input", name: "token", type: "password", autocomplete: "off",
                               spellcheck: "false", required: true, "aria-describedby": "token-help" });
    const error = h("p", { class: "form-error", id: "signin-error", role: "alert" });
    if (message) error.textContent = message;
    const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Sign in");
    const form = h("form", { class: "signin-form", novalidate: true },
      h("label", { for: "token-input", text: "Admin token" }),
      h("div", { class: "row" }, input, submit),
      error);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (!token) { error.textContent = "Paste an admin token first."; input.focus(); return; }
      submit.disabled = true;
      try {
        await request("GET", "admin/queues", undefined, token);
        session.set(token, "manual");
        clearError();
        route(true);
      } catch (err) {
        error.textContent = err.status === 403
          ? "That token is valid but is not an admin token: " + err.message
          : err.message;
        input.focus();
      } finally {
        submit.disabled = false;
      }
    });
    const devButton = h("button", { type: "button", class: "btn", hidden: devAvailable === false },
                        "Use the dev-mode admin token");
    devButton.addEventListener("click", async () => {
      const token = await fetchDevToken();
      if (token) {
        session.set(token, "dev");
        route(true);
      } else {
        devButton.hidden = true;
        error.textContent = "This server does not hand out dev tokens (not in dev mode, or not on this machine).";
      }
    });
    main.replaceChildren(h("section", { class: "card signin", "aria-labelledby": "signin-title" },
      h("h1", { id: "signin-title", tabindex: "-1", text: "Sign in to the codeq dashboard" }),
      h("p", {}, "The dashboard acts with an ", h("strong", { text: "admin token" }),
        ". It stays in this browser tab only (sessionStorage) and is sent as ",
        h("code", { text: "Authorization: Bearer …" }), " to the codeq API."),
      form,
      h("p", { class: "muted", id: "token-help" }, "On a dev-mode server: ",
        h("code", { text: "codeq auth dev-token --role admin" }),
        ". Otherwise a token with role ADMIN or scope codeq:admin from your identity provider."),
      devButton));
    input.focus();
  }

  // -- overview

  function renderOverview() {
    setTitle("Queues");
    const summary = h("div", { class: "summary", "aria-label": "Totals" });
    const filter = h("input", { type: "search", id: "queue-filter", placeholder: "Filter by command",
                                autocomplete: "off", spellcheck: "false" });
    const tbody = h("tbody");
    const table = h("table", { class: "grid queues", "aria-describedby": "queues-caption" },
      h("caption", { id: "queues-caption", class: "sr-only", text: "Queues by command, refreshed every two seconds" }),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col", text: "Command" }),
        FIELDS.map(([, label]) => h("th", { scope: "col", class: "num", text: label })),
        h("th", { scope: "col", class: "num", text: "Oldest ready" }),
        h("th", { scope: "col", text: "State" }),
        h("th", { scope: "col", text: "Trend" }))),
      tbody);
    const empty = h("div", { class: "empty", hidden: true });
    main.replaceChildren(
      pageHead("Queues", h("p", { class: "muted subtitle", text: "Depths refresh every 2 s; rates are net changes over the last 20 s." })),
      summary,
      h("div", { class: "toolbar" }, h("label", { for: "queue-filter", class: "sr-only", text: "Filter queues" }), filter),
      h("div", { class: "table-wrap" }, table),
      empty);
    let latest = [];
    const draw = () => {
      const needle = filter.value.trim().toLowerCase();
      const shown = latest.filter((q) => q.command.toLowerCase().includes(needle));
      drawSummary(summary, latest);
      keepState(tbody, () => tbody.replaceChildren(...shown.map(queueRow)));
      table.hidden = latest.length === 0;
      empty.hidden = latest.length !== 0 && shown.length !== 0;
      if (latest.length === 0) {
        empty.replaceChildren(h("h2", { text: "No queues yet" }),
          h("p", {}, "A queue appears with its first task, for example ",
            h("code", { text: "codeq task create --event HELLO --payload '{}'" })));
      } else if (shown.length === 0) {
        empty.replaceChildren(h("p", { text: "No command matches the filter." }));
      }
    };
    filter.addEventListener("input", draw);
    return poll(async () => {
      const body = await api("GET", "admin/queues");
      latest = (body.queues || []).slice().sort((a, b) => a.command.localeCompare(b.command));
      latest.forEach(record);
      draw();
    });
  }

  function drawSummary(el, queues) {
    const total = (field) => queues.reduce((n, q) => n + (q[field] || 0), 0);
    const card = (label, value, cls = "") => h("div", { class: ("stat " + cls).trim() },
      h("span", { class: "stat-label", text: label }), h("span", { class: "stat-value", text: fmtInt(value) }));
    const dlq = total("dlq");
    const paused = queues.filter((q) => q.paused).length;
    el.replaceChildren(
      card("Queues", queues.length),
      card("Ready", total("ready")),
      card("Delayed", total("delayed")),
      card("In progress", total("inProgress")),
      card("Dead-lettered", dlq, dlq > 0 ? "stat-bad" : ""),
      card("Paused", paused, paused > 0 ? "stat-warn" : ""));
  }

  function queueRow(q) {
    return h("tr", { dataset: { command: q.command } },
      h("th", { scope: "row" }, h("a", { href: queueHref(q.command), class: "command", dataset: { key: "q:" + q.command }, text: q.command })),
      FIELDS.map(([field]) => h("td", { class: "num" + (field === "dlq" && q.dlq > 0 ? " bad" : "") },
        h("span", { class: "depth", dataset: { field }, text: fmtInt(q[field]) }), rateEl(q.command, field))),
      h("td", { class: "num" }, h("span", { dataset: { field: "oldestReadyAt" },
        title: q.oldestReadyAt ? "ready since " + q.oldestReadyAt : "nothing ready",
        text: q.oldestReadyAt ? relative(new Date(q.oldestReadyAt)) : "–" })),
      h("td", {}, q.paused ? h("span", { class: "badge badge-paused", text: "paused" }) : h("span", { class: "badge badge-active", text: "active" })),
      h("td", {}, sparkline(q.command)));
  }

  // -- one queue

  function renderQueue(command) {
    setTitle(command);
    const state = { stats: null, dlq: [], cursor: null, selected: new Set(), dlqCount: null,
                    tasks: [], taskCursor: null, status: "" };
    const badge = h("span", { class: "badge", id: "queue-state" });
    const pauseBtn = h("button", { type: "button", class: "btn", id: "pause-toggle" }, "…");
    const cards = h("div", { class: "summary" });
    const spark = h("div", { class: "spark-wrap" });
    const dlqBody = h("tbody");
    const selectAll = h("input", { type: "checkbox", id: "dlq-select-all", "aria-label": "Select every task shown" });
    const redriveSel = h("button", { type: "button", class: "btn btn-primary", id: "redrive-selected", disabled: true }, "Redrive selected");
    const redriveAll = h("button", { type: "button", class: "btn", id: "redrive-all" }, "Redrive all");
    const dlqMore = h("button", { type: "button", class: "btn", hidden: true }, "Load more");
    const dlqEmpty = h("p", { class: "empty", hidden: true, text: "The dead-letter queue is empty." });
    const dlqTable = h("table", { class: "grid dlq" },
      h("caption", { class: "sr-only", text: "Dead-lettered tasks, oldest first" }),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col", class: "check" }, selectAll),
        h("th", { scope: "col", text: "Task" }),
        h("th", { scope: "col", class: "num", text: "Attempts" }),
        h("th", { scope: "col", text: "Error" }),
        h("th", { scope: "col", text: "Payload" }),
        h("th", { scope: "col", text: "Dead-lettered" }))),
      dlqBody);
    const statusSelect = h("select", { id: "task-status" },
      h("option", { value: "", text: "Any status" }),
      STATUSES.map((s) => h("option", { value: s, text: s.replace("_", " ") })));
    const tasksBody = h("tbody");
    const tasksMore = h("button", { type: "button", class: "btn", hidden: true }, "Load more");
    const tasksEmpty = h("p", { class: "empty", hidden: true, text: "No task matches." });
    const tasksTable = h("table", { class: "grid" },
      h("caption", { class: "sr-only", text: "Tasks of this command, oldest first" }),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col", text: "Task" }),
        h("th", { scope: "col", text: "Status" }),
        h("th", { scope: "col", class: "num", text: "Priority" }),
        h("th", { scope: "col", class: "num", text: "Attempts" }),
        h("th", { scope: "col", text: "Payload" }),
        h("th", { scope: "col", text: "Updated" }))),
      tasksBody);

    main.replaceChildren(
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/", text: "Queues" }), h("span", { "aria-hidden": "true", text: " / " }), h("span", { text: command })),
      pageHead(command, badge, h("div", { class: "head-actions" }, pauseBtn)),
      cards, spark,
      h("section", { class: "card", "aria-labelledby": "dlq-title" },
        h("div", { class: "section-head" },
          h("h2", { id: "dlq-title", text: "Dead-letter queue" }),
          h("div", { class: "head-actions" }, redriveSel, redriveAll,
            button("Refresh", () => busyLoad(null), { kind: "btn-ghost" }))),
        h("p", { class: "muted", text: "Tasks that used up their attempts. Redrive moves them back to ready with attempts reset to 0." }),
        h("div", { class: "table-wrap" }, dlqTable), dlqEmpty, dlqMore),
      h("section", { class: "card", "aria-labelledby": "tasks-title" },
        h("div", { class: "section-head" },
          h("h2", { id: "tasks-title", text: "Tasks" }),
          h("div", { class: "head-actions" },
            h("label", { for: "task-status", class: "sr-only", text: "Status" }), statusSelect,
            button("Refresh", () => loadTasks(false).catch(report), { kind: "btn-ghost" }))),
        h("div", { class: "table-wrap" }, tasksTable), tasksEmpty, tasksMore));

    const drawStats = () => {
      const s = state.stats;
      if (!s) return;
      badge.className = "badge " + (s.paused ? "badge-paused" : "badge-active");
      badge.textContent = s.paused ? "paused" : "active";
      pauseBtn.textContent = s.paused ? "Resume queue" : "Pause queue";
      pauseBtn.className = "btn " + (s.paused ? "btn-primary" : "btn-warn");
      pauseBtn.title = s.paused ? "Hand out this command's tasks again" : "Stop handing out this command's tasks (they are still accepted)";
      cards.replaceChildren(...FIELDS.map(([field, label]) => h("div", { class: "stat" + (field === "dlq" && s.dlq > 0 ? " stat-bad" : ""), dataset: { stat: field } },
        h("span", { class: "stat-label", text: label }),
        h("span", { class: "stat-value", text: fmtInt(s[field]) }),
        rateEl(command, field))));
      spark.replaceChildren(sparkline(command, 600, 56), h("span", { class: "muted legend" },
        h("span", { class: "key key-backlog" }), "backlog ", h("span", { class: "key key-dlq" }), "DLQ, " + spanText(command)));
      redriveAll.disabled = !(s.dlq > 0);
    };

    const drawDlq = () => {
      for (const id of [...state.selected]) if (!state.dlq.some((t) => t.id === id)) state.selected.delete(id);
      keepState(dlqBody, () => dlqBody.replaceChildren(...state.dlq.map((t) => {
        const box = h("input", { type: "checkbox", checked: state.selected.has(t.id), dataset: { key: "sel:" + t.id },
                                 "aria-label": "Select task " + t.id });
        box.addEventListener("change", () => {
          if (box.checked) state.selected.add(t.id); else state.selected.delete(t.id);
          drawSelection();
        });
        return h("tr", { dataset: { task: t.id } },
          h("td", { class: "check" }, box),
          h("td", {}, h("a", { href: taskHref(t.id), class: "mono", dataset: { key: "dl:" + t.id }, title: t.id, text: t.id.slice(0, 8) + "…" })),
          h("td", { class: "num", text: t.attempts + " / " + t.maxAttempts }),
          h("td", { class: "error-cell" }, h("span", { class: "error-text", text: t.error || "—" }),
            h("span", { class: "last-reason", dataset: { reasonFor: t.id } })),
          h("td", {}, payloadPreview(t, "dlp:")),
          h("td", {}, fmtTime(t.finishedAt || t.updatedAt)));
      })));
      fillReasons(dlqBody, state.dlq).catch(() => {});
      dlqTable.hidden = state.dlq.length === 0;
      dlqEmpty.hidden = state.dlq.length !== 0;
      dlqMore.hidden = !state.cursor;
      drawSelection();
    };

    const drawSelection = () => {
      const n = state.selected.size;
      redriveSel.disabled = n === 0;
      redriveSel.textContent = n ? "Redrive selected (" + n + ")" : "Redrive selected";
      selectAll.checked = n > 0 && n === state.dlq.length;
      selectAll.indeterminate = n > 0 && n < state.dlq.length;
    };

    const loadDlq = async (more) => {
      const params = new URLSearchParams({ limit: "50" });
      if (more && state.cursor) params.set("cursor", state.cursor);
      const body = await api("GET", "admin/queues/" + encodeURIComponent(command) + "/dlq?" + params);
      state.dlq = more ? state.dlq.concat(body.tasks || []) : (body.tasks || []);
      state.cursor = body.nextCursor || null;
      drawDlq();
    };
    const busyLoad = (btn) => (btn ? busy(btn, () => loadDlq(true)) : loadDlq(false).then(refreshStats).catch(report));

    const loadTasks = async (more) => {
      const params = new URLSearchParams({ command, limit: "25" });
      if (state.status) params.set("status", state.status);
      if (more && state.taskCursor) params.set("cursor", state.taskCursor);
      const body = await api("GET", "tasks?" + params);
      state.tasks = more ? state.tasks.concat(body.tasks || []) : (body.tasks || []);
      state.taskCursor = body.nextCursor || null;
      keepState(tasksBody, () => tasksBody.replaceChildren(...state.tasks.map((t) => h("tr", { dataset: { task: t.id } },
        h("td", {}, h("a", { href: taskHref(t.id), class: "mono", dataset: { key: "t:" + t.id }, title: t.id, text: t.id.slice(0, 8) + "…" })),
        h("td", {}, statusBadge(t.status), t.deadLettered ? h("span", { class: "badge badge-dlq", text: "DLQ" }) : null),
        h("td", { class: "num", text: String(t.priority) }),
        h("td", { class: "num", text: t.attempts + " / " + t.maxAttempts }),
        h("td", {}, payloadPreview(t, "tp:")),
        h("td", {}, fmtTime(t.updatedAt))))));
      tasksTable.hidden = state.tasks.length === 0;
      tasksEmpty.hidden = state.tasks.length !== 0;
      tasksMore.hidden = !state.taskCursor;
    };

    const shown = () => main.contains(cards);
    const refreshStats = async () => {
      let stats;
      try {
        stats = await api("GET", "admin/queues/" + encodeURIComponent(command));
      } catch (err) {
        if (!shown()) return;
        if (err instanceof ApiError && err.status === 400) {
          stopPolling();
          main.replaceChildren(pageHead("No such queue"), h("div", { class: "card" },
            h("p", { class: "error-text", text: err.message }),
            h("p", {}, h("a", { href: "#/", text: "Back to the queues" }))));
          return;
        }
        throw err;
      }
      record(stats);
      state.stats = stats;
      drawStats();
      if (state.dlqCount !== stats.dlq) {
        state.dlqCount = stats.dlq;
        await loadDlq(false);
      }
    };

    selectAll.addEventListener("change", () => {
      if (selectAll.checked) state.dlq.forEach((t) => state.selected.add(t.id)); else state.selected.clear();
      drawDlq();
    });
    dlqMore.addEventListener("click", () => busyLoad(dlqMore));
    tasksMore.addEventListener("click", () => busy(tasksMore, () => loadTasks(true)));
    statusSelect.addEventListener("change", () => { state.status = statusSelect.value; loadTasks(false).catch(report); });

    pauseBtn.addEventListener("click", () => busy(pauseBtn, async () => {
      const action = state.stats && state.stats.paused ? "resume" : "pause";
      const stats = await api("POST", "admin/queues/" + encodeURIComponent(command) + "/" + action);
      state.stats = stats;
      drawStats();
      clearError();
      toast(action === "pause" ? "Paused " + command + ": its tasks are accepted but not handed out."
                               : "Resumed " + command + ".");
    }));

    redriveSel.addEventListener("click", () => busy(redriveSel, async () => {
      const ids = [...state.selected];
      if (!ids.length) return;
      const body = await api("POST", "admin/queues/" + encodeURIComponent(command) + "/dlq/redrive", { ids });
      state.selected.clear();
      clearError();
      toast("Redrove " + body.redriven + " task" + (body.redriven === 1 ? "" : "s") + " of " + command + ".");
      await loadDlq(false);
      await refreshStats();
      loadTasks(false).catch(report);
    }, drawSelection));

    redriveAll.addEventListener("click", async () => {
      const n = state.stats ? state.stats.dlq : 0;
      const ok = await confirmDialog({
        title: "Redrive every dead-lettered task?",
        body: (n === 1 ? "The one task in the DLQ of " + command + " goes"
                       : "All " + fmtInt(n) + " tasks in the DLQ of " + command + " go") +
              " back to ready with attempts reset to 0, oldest first.",
        confirm: "Redrive all",
      });
      if (!ok) return;
      await busy(redriveAll, async () => {
        let total = 0;
        for (;;) {
          const body = await api("POST", "admin/queues/" + encodeURIComponent(command) + "/dlq/redrive", { limit: REDRIVE_ALL_BATCH });
          total += body.redriven;
          if (body.redriven < REDRIVE_ALL_BATCH) break;
        }
        state.selected.clear();
        clearError();
        toast("Redrove " + total + " task" + (total === 1 ? "" : "s") + " of " + command + ".");
        await loadDlq(false);
        await refreshStats();
        loadTasks(false).catch(report);
      }, drawStats);
    });

    return poll(refreshStats).then(() => {
      if (main.contains(tasksTable)) loadTasks(false).catch(report);
    });
  }

  // The DLQ list says why a task was dead-lettered (MAX_ATTEMPTS); the worker's last
  // reason is in its timeline: fetched once per dead-lettered task, a few at a time.
  const reasons = new Map(); // id@updatedAt -> reason ("" when none)

  async function fillReasons(tbody, tasks) {
    const paint = () => {
      for (const el of tbody.querySelectorAll("[data-reason-for]")) {
        const t = tasks.find((x) => x.id === el.dataset.reasonFor);
        const reason = t && reasons.get(t.id + "@" + t.updatedAt);
        el.textContent = reason ? "last: " + reason : "";
        el.title = reason || "";
      }
    };
    paint();
    const todo = tasks.filter((t) => !reasons.has(t.id + "@" + t.updatedAt));
    const workers = Array.from({ length: Math.min(6, todo.length) }, async () => {
      for (let t = todo.shift(); t; t = todo.shift()) {
        const full = await api("GET", "tasks/" + encodeURIComponent(t.id) + "?history=true");
        const last = (full.history || []).filter((e) => e.reason && e.reason !== full.error).pop();
        reasons.set(t.id + "@" + t.updatedAt, last ? last.reason : "");
      }
    });
    if (workers.length) {
      await Promise.all(workers);
      paint();
    }
  }

  function payloadPreview(task, keyPrefix) {
    return h("details", { class: "payload", dataset: { key: keyPrefix + task.id } },
      h("summary", { class: "mono", title: "Show the whole payload", text: preview(task.payload) }),
      h("pre", { class: "json", text: json(task.payload, 2) }));
  }

  // -- one task

  function renderTask(id) {
    setTitle("Task " + id.slice(0, 8));
    let previous = null;
    main.replaceChildren(
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/", text: "Queues" }), h("span", { "aria-hidden": "true", text: " / " }), h("span", { text: "Task" })),
      pageHead("Task"),
      h("p", { class: "muted", text: "Loading…" }));
    return poll(async (alive) => {
      let task;
      try {
        task = await api("GET", "tasks/" + encodeURIComponent(id) + "?history=true");
      } catch (err) {
        if (!alive()) return;
        if (err instanceof ApiError && (err.status === 404 || err.status === 400)) {
          stopPolling();
          main.replaceChildren(pageHead("Task not found"), h("div", { class: "card" },
            h("p", { class: "error-text", text: err.message }),
            h("p", {}, h("a", { href: "#/", text: "Back to the queues" }))));
          return;
        }
        throw err;
      }
      let result = null;
      let resultNote = null;
      try {
        result = await api("GET", "tasks/" + encodeURIComponent(id) + "/result");
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 404) throw err;
        resultNote = err.message;
      }
      if (!alive()) return;
      const key = JSON.stringify([task, result, resultNote]);
      if (key !== previous) {
        previous = key;
        keepState(main, () => drawTask(task, result && result.result, resultNote));
      } else {
        for (const el of main.querySelectorAll("[data-lease]")) el.textContent = " " + leaseText(el.dataset.lease);
        for (const el of main.querySelectorAll("[data-rel]")) el.textContent = relative(new Date(el.dataset.rel));
      }
      if (TERMINAL.has(task.status)) stopPolling();
    });
  }

  function eventKind(event) {
    if (["dead_lettered", "failed", "lease_expired"].includes(event)) return "bad";
    if (["nacked", "abandoned", "cancel_requested", "cancelled"].includes(event)) return "warn";
    if (["completed", "redriven"].includes(event)) return "ok";
    return "plain";
  }

  function leaseText(iso) {
    const date = new Date(iso);
    return date.getTime() < Date.now() ? "expired " + relative(date) : "expires " + relative(date);
  }

  function drawTask(task, result, resultNote) {
    setTitle("Task " + task.id.slice(0, 8) + " · " + task.status);
    const actions = h("div", { class: "head-actions" });
    if (task.deadLettered && task.status === "FAILED") {
      const redrive = h("button", { type: "button", class: "btn btn-primary", id: "task-redrive" }, "Redrive");
      redrive.addEventListener("click", () => busy(redrive, async () => {
        const body = await api("POST", "admin/queues/" + encodeURIComponent(task.command) + "/dlq/redrive", { ids: [task.id] });
        toast(body.redriven ? "Moved the task back to ready." : "The task was not in the DLQ any more.");
        route(false);
      }));
      actions.append(redrive);
    }
    if ((task.status === "PENDING" || task.status === "IN_PROGRESS") && !task.cancelRequested) {
      const cancel = h("button", { type: "button", class: "btn btn-danger", id: "task-cancel" }, "Cancel task");
      cancel.addEventListener("click", async () => {
        const ok = await confirmDialog({
          title: "Cancel this task?",
          body: task.status === "PENDING" ? "It will not run; its status becomes CANCELLED."
            : "It is running: the worker is asked to stop at its next heartbeat, then the task ends CANCELLED.",
          confirm: "Cancel task", danger: true,
        });
        if (!ok) return;
        await busy(cancel, async () => {
          await api("POST", "tasks/" + encodeURIComponent(task.id) + "/cancel");
          toast("Cancel requested.");
          route(false);
        });
      });
      actions.append(cancel);
    }
    const row = (label, ...value) => [h("dt", { text: label }), h("dd", {}, ...value)];
    const lease = task.leaseUntil
      ? [fmtTime(task.leaseUntil), h("span", { class: "muted", dataset: { lease: task.leaseUntil }, text: " " + leaseText(task.leaseUntil) })]
      : [h("span", { class: "muted", text: "—" })];
    const facts = h("dl", { class: "facts" },
      row("Status", statusBadge(task.status), task.deadLettered ? h("span", { class: "badge badge-dlq", text: "in DLQ" }) : null,
          task.cancelRequested ? h("span", { class: "badge badge-paused", text: "cancel requested" }) : null),
      row("Command", h("a", { href: queueHref(task.command), text: task.command })),
      row("Attempts", h("span", { id: "task-attempts", text: task.attempts + " of " + task.maxAttempts })),
      row("Priority", String(task.priority)),
      row("Worker", task.workerId ? h("span", { class: "mono", text: task.workerId }) : h("span", { class: "muted", text: "—" })),
      row("Lease until", ...lease),
      row("Created", fmtTime(task.createdAt)),
      row("Updated", fmtTime(task.updatedAt)),
      task.runAt ? row("Run at", fmtTime(task.runAt)) : null,
      task.visibleAt ? row("Visible at", fmtTime(task.visibleAt)) : null,
      task.finishedAt ? row("Finished", fmtTime(task.finishedAt)) : null,
      task.idempotencyKey ? row("Idempotency key", h("span", { class: "mono", text: task.idempotencyKey })) : null,
      task.webhook ? row("Webhook", h("span", { class: "mono", text: task.webhook })) : null,
      task.backoff ? row("Backoff", h("span", { class: "mono", text: json(task.backoff) })) : null,
      task.error ? row("Error", h("span", { class: "error-text", text: task.error })) : null);

    const resultSection = h("section", { class: "card", "aria-labelledby": "result-title" },
      h("h2", { id: "result-title", text: "Result" }));
    if (result) {
      resultSection.append(h("dl", { class: "facts" },
        row("Status", statusBadge(result.status)),
        row("Completed", fmtTime(result.completedAt)),
        result.error ? row("Error", h("span", { class: "error-text", text: result.error })) : null));
      if (result.result !== null && result.result !== undefined) {
        resultSection.append(h("pre", { class: "json", id: "task-result", text: json(result.result, 2) }));
      }
      const artifacts = result.artifacts || [];
      resultSection.append(h("h3", { text: "Artifacts" }),
        artifacts.length ? h("ul", { class: "artifacts" }, artifacts.map((a) => h("li", {}, artifactLink(a))))
                         : h("p", { class: "muted", text: "None." }));
    } else {
      resultSection.append(h("p", { class: "muted", text: resultNote || "No result yet." }));
    }

    const history = task.history || [];
    const timeline = h("section", { class: "card", "aria-labelledby": "timeline-title" },
      h("h2", { id: "timeline-title", text: "Timeline" }),
      history.length ? h("ol", { class: "timeline" }, history.map((e) => h("li", {},
        h("span", { class: "tl-event tl-" + eventKind(e.event), text: e.event }),
        h("span", { class: "tl-when" }, fmtTime(e.at)),
        e.workerId ? h("span", { class: "tl-worker mono", text: e.workerId }) : null,
        e.reason ? h("span", { class: "tl-reason", text: e.reason }) : null)))
        : h("p", { class: "muted", text: "No recorded transitions." }));

    main.replaceChildren(
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/", text: "Queues" }), h("span", { "aria-hidden": "true", text: " / " }),
        h("a", { href: queueHref(task.command), text: task.command }), h("span", { "aria-hidden": "true", text: " / " }), h("span", { text: "Task" })),
      pageHead("Task", h("code", { class: "task-id", text: task.id }), actions),
      h("div", { class: "task-layout" },
        h("div", { class: "task-col" },
          h("section", { class: "card", "aria-labelledby": "facts-title" }, h("h2", { id: "facts-title", text: "Details" }), facts),
          timeline),
        h("div", { class: "task-col" },
          h("section", { class: "card", "aria-labelledby": "payload-title" },
            h("h2", { id: "payload-title", text: "Payload" }),
            h("pre", { class: "json", id: "task-payload", text: json(task.payload, 2) })),
          resultSection)));
  }

  /** External http(s) links open in a new tab; the server's own artifact URLs are
   * downloaded with the token; anything else (javascript:, data:) is shown as text. */
  function artifactLink(artifact) {
    const name = artifact.name || "artifact";
    let url;
    try { url = new URL(artifact.url, location.href); } catch (err) { url = null; }
    if (url && url.origin === location.origin && url.pathname.startsWith(API)) {
      const btn = h("button", { type: "button", class: "btn btn-small" }, "Download " + name);
      btn.addEventListener("click", () => busy(btn, async () => {
        const res = await fetch(url.pathname + url.search, { headers: { Authorization: "Bearer " + session.token() }, cache: "no-store" });
        if (!res.ok) {
          let message = "HTTP " + res.status;
          try { message = (await res.json()).error || message; } catch (err) { /* not JSON */ }
          throw new ApiError(res.status, message);
        }
        const blobUrl = URL.createObjectURL(await res.blob());
        const a = h("a", { href: blobUrl, download: name });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(blobUrl), 10000);
      }));
      return btn;
    }
    if (url && (url.protocol === "https:" || url.protocol === "http:")) {
      return h("a", { href: url.href, target: "_blank", rel: "noopener noreferrer" }, name,
        h("span", { class: "muted", text: " " + url.host }));
    }
    return h("span", {}, name, h("span", { class: "muted mono", text: " " + (artifact.url || "") }));
  }

  function renderNotFound() {
    setTitle("Not found");
    main.replaceChildren(pageHead("Nothing here"), h("p", {}, "This dashboard has no such page. ", h("a", { href: "#/", text: "See the queues." })));
  }

  // ---------------------------------------------------------------- routing

  function route(focus) {
    stopPolling();
    if (!session.token()) { renderSignIn(); return; }
    const hash = location.hash.startsWith("#/") ? location.hash : "#/";
    let match;
    let done;
    if (hash === "#/" || hash === "#/queues") done = renderOverview();
    else if ((match = hash.match(/^#\/queues\/([^/]+)$/))) done = renderQueue(decodeURIComponent(match[1]));
    else if ((match = hash.match(/^#\/tasks\/([^/]+)$/))) done = renderTask(decodeURIComponent(match[1]).trim());
    else renderNotFound();
    for (const link of document.querySelectorAll(".nav a")) {
      link.toggleAttribute("aria-current", hash === "#/" || hash.startsWith("#/queues"));
    }
    if (focus) {
      const heading = main.querySelector("h1");
      if (heading) heading.focus({ preventScroll: true });
    }
    return done;
  }

  function clearToast() {
    clearTimeout(toastTimer);
    $("#toast").hidden = true;
  }

  window.addEventListener("hashchange", () => {
    if (location.hash.startsWith("#/") || location.hash === "") {
      clearError();
      clearToast();
      route(true);
    }
  });

  $("#lookup").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("#lookup-id");
    const id = input.value.trim();
    if (!id) { input.focus(); return; }
    input.value = "";
    if (location.hash === taskHref(id)) route(true);
    else location.hash = taskHref(id);
  });

  $("#notice-close").addEventListener("click", clearError);

  $("#signout").addEventListener("click", () => {
    if (session.source() === "dev") sessionStorage.setItem(K_NO_DEV, "1");
    session.clear();
    clearError();
    clearToast();
    renderSignIn();
  });

  $(".skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    main.focus();
  });

  async function start() {
    updateChrome();
    if (!session.token() && !sessionStorage.getItem(K_NO_DEV)) {
      const token = await fetchDevToken();
      if (token) session.set(token, "dev");
    }
    route(false);
  }

  start();
})();
