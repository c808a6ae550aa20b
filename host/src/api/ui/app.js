// perf-sentinel dashboard. Everything shown comes from the JSON API on the
// same origin. Text from traces is only ever placed with textContent (through
// `el` below), never parsed as HTML. The API key lives in `apiKey` for the
// page's lifetime and is never stored.
"use strict";

const THEME_KEY = "perf-sentinel-theme";
const REFRESH_MS = 5000;
const SEVERITY_RANK = { critical: 3, warning: 2, info: 1 };

let apiKey = null;
let findings = [];
let lastFindingsText = "";
let typeFilter = "";
let refreshTimer = null;
let ackTarget = null;

// --- small helpers --------------------------------------------------------

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = String(v);
      else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function $(id) { return document.getElementById(id); }

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

function fmtNum(n, digits) {
  if (typeof n !== "number" || !isFinite(n)) return "–";
  if (n !== 0 && Math.abs(n) < 0.001) return n.toExponential(2);
  return n.toLocaleString("en-US", { maximumFractionDigits: digits === undefined ? 2 : digits });
}

function fmtMs(ms) {
  if (typeof ms !== "number") return "–";
  return ms >= 1000 ? fmtNum(ms / 1000, 2) + " s" : fmtNum(ms, 2) + " ms";
}

function fmtUptime(s) {
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
}

function notice(text, bad) {
  const n = $("notice");
  if (!text) { n.hidden = true; return; }
  n.textContent = text;
  n.className = bad ? "bad" : "";
  n.hidden = false;
}

async function getJson(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
  if (!r.ok) throw new Error(`${path} answered ${r.status}${await errorText(r)}`);
  return r.json();
}

async function errorText(r) {
  try {
    const body = await r.json();
    return body && body.error ? `: ${body.error}` : "";
  } catch (_) {
    return "";
  }
}

// --- theme ----------------------------------------------------------------

function currentTheme() {
  const set = document.documentElement.dataset.theme;
  if (set) return set;
  return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  const next = currentTheme() === "dark" ? "light" : "dark";
  const b = $("theme-toggle");
  b.textContent = next === "dark" ? "Dark theme" : "Light theme";
  b.setAttribute("aria-label", `Switch to the ${next} theme`);
}

function initTheme() {
  let saved = null;
  try { saved = window.localStorage.getItem(THEME_KEY); } catch (_) { /* storage off */ }
  applyTheme(saved === "dark" || saved === "light" ? saved : null);
  $("theme-toggle").addEventListener("click", () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    try { window.localStorage.setItem(THEME_KEY, next); } catch (_) { /* storage off */ }
    applyTheme(next);
  });
}

// --- routing --------------------------------------------------------------

function route() {
  const hash = location.hash || "#/findings";
  const parts = hash.slice(2).split("/");
  const view = ["findings", "trace", "detectors", "energy"].includes(parts[0]) ? parts[0] : "findings";
  for (const v of ["findings", "trace", "detectors", "energy"]) $("view-" + v).hidden = v !== view;
  for (const a of document.querySelectorAll("nav a")) {
    const on = a.dataset.view === view || (view === "trace" && a.dataset.view === "findings");
    if (on) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  notice(null);
  if (view === "findings") loadFindings(true);
  else if (view === "trace") loadTrace(decodeURIComponent(parts[1] || ""), decodeURIComponent(parts.slice(2).join("/")));
  else if (view === "detectors") loadDetectors();
  else if (view === "energy") loadEnergy();
}

// --- header ---------------------------------------------------------------

async function loadStatus() {
  try {
    const s = await getJson("/api/status");
    $("daemon-info").textContent =
      `v${s.version} · ${s.environment} · up ${fmtUptime(s.uptime_seconds)} · ${fmtNum(s.spans_received, 0)} spans`;
    return s;
  } catch (e) {
    $("daemon-info").textContent = "daemon unreachable";
    return null;
  }
}

// --- findings -------------------------------------------------------------

async function loadFindings(force) {
  const acked = $("f-acked").checked;
  let text;
  try {
    const r = await fetch(`/api/findings?limit=1000${acked ? "&include_acked=true" : ""}`, { cache: "no-store" });
    if (!r.ok) throw new Error(`/api/findings answered ${r.status}${await errorText(r)}`);
    text = await r.text();
  } catch (e) {
    notice(`Cannot load findings: ${e.message}`, true);
    return;
  }
  if (!force && text === lastFindingsText) return;
  lastFindingsText = text;
  findings = JSON.parse(text);
  fillOptions("f-service", findings.map((f) => f.service));
  fillOptions("f-environment", findings.map((f) => f.environment));
  fillOptions("f-type", findings.map((f) => f.type));
  renderFindings();
}

function fillOptions(id, values) {
  const select = $(id);
  const chosen = select.value;
  const distinct = [...new Set(values.filter((v) => typeof v === "string"))].sort();
  if (chosen && !distinct.includes(chosen)) distinct.push(chosen);
  clear(select);
  select.append(el("option", { value: "", text: "all" }));
  for (const v of distinct) select.append(el("option", { value: v, text: v }));
  select.value = chosen;
}

function waste(f) {
  const g = f.green_impact || {};
  return (g.estimated_extra_io_ops || 0) * (f.seen_count || 1);
}

function sorted(list) {
  const by = $("f-sort").value;
  const sev = (f) => SEVERITY_RANK[f.severity] || 0;
  const occ = (f) => f.seen_count || 0;
  const keyed = list.map((f, i) => ({ f, i }));
  keyed.sort((a, b) => {
    let d = 0;
    if (by === "severity") d = sev(b.f) - sev(a.f) || occ(b.f) - occ(a.f);
    else if (by === "occurrences") d = occ(b.f) - occ(a.f) || sev(b.f) - sev(a.f);
    else if (by === "waste") d = waste(b.f) - waste(a.f) || sev(b.f) - sev(a.f);
    return d || a.i - b.i; // the API's order: most recent first
  });
  return keyed.map((k) => k.f);
}

function renderFindings() {
  const service = $("f-service").value;
  const severity = $("f-severity").value;
  const environment = $("f-environment").value;
  typeFilter = $("f-type").value;
  const base = findings.filter((f) =>
    (!service || f.service === service) &&
    (!severity || f.severity === severity) &&
    (!environment || f.environment === environment));
  renderTypeCounts(base);
  const shown = sorted(base.filter((f) => !typeFilter || f.type === typeFilter));

  const focused = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.signature : null;
  const list = $("findings-list");
  clear(list);
  for (const f of shown) list.append(findingItem(f));
  $("findings-summary").textContent = findings.length === 0
    ? "No findings yet. They appear here as traces are analyzed."
    : `${shown.length} of ${findings.length} finding${findings.length === 1 ? "" : "s"} (folded by signature)`;
  if (focused) {
    const again = [...list.querySelectorAll("button.open")].find((b) => b.dataset.signature === focused);
    if (again) again.focus();
  }
}

function renderTypeCounts(list) {
  const counts = new Map();
  for (const f of list) counts.set(f.type, (counts.get(f.type) || 0) + 1);
  const box = $("type-counts");
  clear(box);
  for (const [type, n] of [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))) {
    box.append(el("button", {
      type: "button", class: "chip", "aria-pressed": String(typeFilter === type),
      "data-type": type, text: `${type} ${n}`,
      on: { click: () => { $("f-type").value = typeFilter === type ? "" : type; renderFindings(); } },
    }));
  }
}

function findingItem(f) {
  const pattern = f.pattern || {};
  const g = f.green_impact || {};
  const open = el("button", {
    type: "button", class: "open", "data-signature": f.signature,
    "aria-label": `${f.severity} ${f.type} in ${f.service}: ${f.title}. Open trace`,
    on: { click: () => openFinding(f) },
  },
  el("span", { class: "line1" },
    el("span", { class: `sev ${f.severity}`, text: f.severity }),
    el("span", { class: "title", text: f.title }),
    el("span", { class: "tag", text: f.type })),
  el("span", { class: "line1" },
    el("span", { class: "tag", text: f.service }),
    f.source_endpoint ? el("span", { class: "tag mono", text: f.source_endpoint }) : null,
    el("span", { class: "tag", text: `seen ${f.seen_count || 1}×` }),
    pattern.occurrences ? el("span", { class: "tag", text: `${pattern.occurrences} per trace` }) : null,
    g.estimated_extra_io_ops ? el("span", { class: "tag", text: `${g.estimated_extra_io_ops} avoidable I/O` }) : null,
    f.environment ? el("span", { class: "tag", text: f.environment }) : null),
  pattern.template ? el("span", { class: "template mono", text: pattern.template }) : null);

  const side = el("span", { class: "side" });
  const a = f.acknowledged_by;
  if (a) {
    side.append(el("span", { class: "ackinfo", text: `acknowledged by ${a.by} (${a.source})` }));
    if (a.source === "daemon") {
      side.append(el("button", { type: "button", class: "revoke", "data-signature": f.signature, text: "Revoke",
        on: { click: () => openAck(f, "revoke") } }));
    }
  } else {
    side.append(el("button", { type: "button", class: "ack", "data-signature": f.signature, text: "Acknowledge",
      on: { click: () => openAck(f, "ack") } }));
  }
  return el("li", { class: a ? "finding acked" : "finding", "data-signature": f.signature }, open, side);
}

function openFinding(f) {
  location.hash = `#/trace/${encodeURIComponent(f.trace_id)}/${encodeURIComponent(f.signature)}`;
}

// --- trace ----------------------------------------------------------------

async function loadTrace(traceId, signature) {
  const meta = $("trace-meta"), detail = $("trace-finding"), tree = $("span-tree");
  clear(meta); clear(detail); clear(tree);
  $("trace-h").textContent = `Trace ${traceId}`;
  let t;
  try {
    const r = await fetch(`/api/explain/${encodeURIComponent(traceId)}`, { cache: "no-store" });
    if (r.status === 404) {
      notice("This trace is no longer held by the daemon (it keeps the last traces with findings, see max_retained_traces).", true);
      return;
    }
    if (!r.ok) throw new Error(`answered ${r.status}${await errorText(r)}`);
    t = await r.json();
  } catch (e) {
    notice(`Cannot load the trace: ${e.message}`, true);
    return;
  }
  meta.append(
    el("span", { text: `${t.span_count} spans` }),
    el("span", { text: fmtMs(t.duration_ms) }),
    el("span", { text: `started ${t.start_time}` }),
    el("span", { text: `services: ${(t.services || []).join(", ")}` }),
    el("span", { text: t.source === "window" ? "not analyzed yet" : "analyzed" }));

  const all = t.findings || [];
  const f = all.find((x) => x.signature === signature) || all[0];
  if (f) detail.append(findingDetail(f, all));
  const cited = f ? f.signature : null;

  const total = t.duration_ms > 0 ? t.duration_ms : 1;
  for (const s of t.spans || []) {
    const hit = cited ? (s.findings || []).includes(cited) : (s.findings || []).length > 0;
    const label = el("div", { class: "label" },
      el("span", { class: "name", text: s.name }),
      " ",
      el("span", { class: "tag", text: `${s.service} · ${s.io} · ${s.span_kind}` }),
      s.http_status ? el("span", { class: "tag", text: ` · ${s.http_status}` }) : null,
      s.error ? el("span", { class: "err", text: " error" }) : null,
      s.target ? el("code", { class: "target", text: s.target }) : null,
      s.code ? el("span", { class: "tag mono", text: codeText(s.code) }) : null);
    label.style.paddingLeft = `${Math.min(s.depth, 20) * 14}px`;
    const bar = el("span", { class: "bar" });
    bar.style.left = `${Math.max(0, Math.min(100, (s.offset_ms / total) * 100))}%`;
    bar.style.width = `${Math.max(0, Math.min(100, (s.duration_ms / total) * 100))}%`;
    const timeline = el("div", { class: "timeline", role: "img", "aria-label": `${fmtMs(s.duration_ms)} at +${fmtMs(s.offset_ms)}` }, bar);
    const right = el("div", {}, timeline, el("div", { class: "dur", text: `+${fmtMs(s.offset_ms)} · ${fmtMs(s.duration_ms)}` }));
    tree.append(el("li", { class: hit ? "span hit" : "span", "data-span-id": s.span_id, "data-hit": hit ? "true" : "false" }, label, right));
  }
  $("trace-h").focus();
}

function codeText(c) {
  const where = [c.filepath, c.lineno].filter((x) => x !== undefined && x !== null && x !== "").join(":");
  const fn = [c.namespace, c.function].filter(Boolean).join(".");
  return [fn, where].filter(Boolean).join(" at ");
}

function findingDetail(f, all) {
  const rows = [
    ["Type", f.type], ["Service", f.service], ["Endpoint", f.source_endpoint],
    ["Template", f.pattern && f.pattern.template],
    ["Occurrences", f.pattern && f.pattern.occurrences],
    ["Suggestion", f.suggestion],
    ["Code", f.code_location ? codeText(f.code_location) : null],
    ["Avoidable I/O", f.green_impact && f.green_impact.estimated_extra_io_ops],
    ["Signature", f.signature],
  ].filter(([, v]) => v !== undefined && v !== null && v !== "");
  const dl = el("dl");
  for (const [k, v] of rows) dl.append(el("dt", { text: k }), el("dd", { class: k === "Template" || k === "Signature" ? "mono" : null, text: v }));
  const others = all.filter((x) => x.signature !== f.signature);
  return el("div", {},
    el("h2", {}, el("span", { class: `sev ${f.severity}`, text: f.severity }), " ", el("span", { text: f.title })),
    dl,
    others.length ? el("p", { class: "muted", text: `Also in this trace: ${others.map((x) => x.type).join(", ")}` }) : null);
}

// --- acknowledge / revoke -------------------------------------------------

function openAck(f, mode) {
  ackTarget = { finding: f, mode };
  $("ack-h").textContent = mode === "ack" ? "Acknowledge finding" : "Revoke acknowledgment";
  $("ack-submit").textContent = mode === "ack" ? "Acknowledge" : "Revoke";
  $("ack-signature").textContent = f.signature;
  $("ack-fields").hidden = mode !== "ack";
  $("ack-key").value = apiKey || "";
  $("ack-error").hidden = true;
  $("ack-dialog").showModal();
  (mode === "ack" ? $("ack-by") : $("ack-key")).focus();
}

function ackMessage(status, detail, mode) {
  switch (status) {
    case 401: return "Wrong or missing API key (401): enter the key the daemon was started with.";
    case 409: return `Already acknowledged (409)${detail}`;
    case 503: return `Acknowledgments are unavailable on this daemon (503)${detail}`;
    case 404: return mode === "revoke" ? `Nothing to revoke (404)${detail}` : `Not found (404)${detail}`;
    case 400: return `Refused (400)${detail}`;
    case 507: return `The acknowledgment store is full (507)${detail}`;
    default: return `The daemon answered ${status}${detail}`;
  }
}

async function submitAck(event) {
  event.preventDefault();
  if (!ackTarget) return;
  const { finding, mode } = ackTarget;
  const key = $("ack-key").value;
  const headers = {};
  if (key) headers["X-API-Key"] = key;
  const init = { method: mode === "ack" ? "POST" : "DELETE", headers };
  if (mode === "ack") {
    const body = {};
    const by = $("ack-by").value.trim(), reason = $("ack-reason").value.trim(), exp = $("ack-expires").value;
    if (by) body.by = by;
    if (reason) body.reason = reason;
    if (exp) body.expires_at = new Date(exp).toISOString();
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const error = $("ack-error");
  let r;
  try {
    r = await fetch(`/api/findings/${encodeURIComponent(finding.signature)}/ack`, init);
  } catch (e) {
    error.textContent = `Cannot reach the daemon: ${e.message}`;
    error.hidden = false;
    return;
  }
  if (r.ok) {
    apiKey = key || null;
    $("key-forget").hidden = !apiKey;
    $("ack-dialog").close();
    notice(mode === "ack" ? `Acknowledged ${finding.signature}` : `Revoked the acknowledgment of ${finding.signature}`);
    loadFindings(true);
    return;
  }
  if (r.status === 401) apiKey = null;
  $("key-forget").hidden = !apiKey;
  error.textContent = ackMessage(r.status, await errorText(r), mode);
  error.hidden = false;
}

// --- detectors ------------------------------------------------------------

async function loadDetectors() {
  const body = $("detectors-table").tBodies[0];
  let list;
  try { list = await getJson("/api/detectors"); } catch (e) { notice(`Cannot load detectors: ${e.message}`, true); return; }
  clear(body);
  for (const d of list) {
    const origin = d.plugin ? `${d.origin} ${d.plugin.version} (plugin)` : d.origin === "builtin" ? "built-in" : d.origin;
    body.append(el("tr", { "data-detector": d.id },
      el("td", {}, el("div", { class: "mono", text: d.id }), el("div", { class: "muted small", text: d.description })),
      el("td", { text: origin }),
      el("td", { class: d.enabled ? "yes" : "muted", text: d.enabled ? "yes" : "no" }),
      el("td", { class: d.quarantined ? "bad" : "muted", text: d.quarantined ? "yes" : "no" }),
      el("td", { class: "num", text: fmtNum(d.runs, 0) }),
      el("td", { class: "num", text: fmtNum(d.findings, 0) }),
      el("td", { class: d.errors ? "num bad" : "num", text: fmtNum(d.errors, 0) })));
  }
}

// --- energy ---------------------------------------------------------------

async function loadEnergy() {
  let status, energy;
  try { [status, energy] = await Promise.all([getJson("/api/status"), getJson("/api/energy")]); }
  catch (e) { notice(`Cannot load energy: ${e.message}`, true); return; }
  const io = status.io || {};
  const cards = $("energy-cards");
  clear(cards);
  const card = (label, value, sub) => el("div", { class: "card" },
    el("div", { class: "label", text: label }), el("div", { class: "value", text: value }),
    sub ? el("div", { class: "muted small", text: sub }) : null);
  cards.append(
    card("I/O waste ratio", `${((io.io_waste_ratio || 0) * 100).toFixed(1)} %`,
      `${fmtNum(io.avoidable_io_ops, 0)} avoidable of ${fmtNum(io.io_ops, 0)} I/O calls`),
    card("Energy (all I/O)", `${fmtNum(io.energy_kwh && io.energy_kwh.io, 6)} kWh`,
      `avoidable: ${fmtNum(io.energy_kwh && io.energy_kwh.avoidable, 6)} kWh`),
    card("CO₂ (all I/O)", `${fmtNum(io.carbon_gco2 && io.carbon_gco2.io, 4)} g`,
      `avoidable: ${fmtNum(io.carbon_gco2 && io.carbon_gco2.avoidable, 4)} g`),
    card("Green scoring", energy.enabled ? "on" : "off",
      energy.enabled ? `${(energy.backends || []).filter((b) => b.configured).length} backend(s) configured` : "[green] enabled = false"));

  const body = $("backends-table").tBodies[0];
  clear(body);
  for (const b of energy.backends || []) {
    const st = b.configured ? b.status : "not configured";
    const cls = st === "ok" ? "yes" : st === "failing" || st === "stale" || st === "degraded" ? "bad" : "muted";
    const failed = b.scrapes_failed ? Object.entries(b.scrapes_failed).map(([k, v]) => `${k} ${v}`).join(", ") : "";
    body.append(el("tr", { "data-backend": b.backend },
      el("td", { text: b.backend }),
      el("td", { class: cls, text: st }),
      el("td", { class: "mono", text: b.endpoint || "" }),
      el("td", { text: b.last_success || "" }),
      el("td", { text: b.configured ? `${b.consecutive_failures} in a row${failed ? "; " + failed : ""}` : "" }),
      el("td", { class: "wrap", text: b.last_error || "" })));
  }
  const model = $("energy-model");
  clear(model);
  const m = energy.model || {};
  const rows = [
    ["Default region", m.default_region],
    ["Baseline kWh per I/O operation", m.baseline_kwh_per_op],
    ["Embodied carbon per request (g)", m.embodied_carbon_per_request_gco2],
    ["Measured services", (energy.measured_services || []).map((s) => `${s.service} (${s.backend}${s.in_use ? "" : ", stale"})`).join(", ") || "none"],
  ];
  for (const [k, v] of rows) model.append(el("dt", { text: k }), el("dd", { text: v === undefined || v === null ? "–" : v }));
}

// --- wiring ---------------------------------------------------------------

function scheduleRefresh() {
  if (refreshTimer) clearInterval(refreshTimer);
  refreshTimer = null;
  if ($("f-refresh").checked) {
    refreshTimer = setInterval(() => {
      loadStatus();
      if (!$("view-findings").hidden && !$("ack-dialog").open) loadFindings(false);
    }, REFRESH_MS);
  }
}

function init() {
  initTheme();
  for (const id of ["f-service", "f-type", "f-severity", "f-environment", "f-sort"]) {
    $(id).addEventListener("change", renderFindings);
  }
  $("f-acked").addEventListener("change", () => loadFindings(true));
  $("f-refresh").addEventListener("change", scheduleRefresh);
  $("refresh").addEventListener("click", () => { loadStatus(); loadFindings(true); });
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("ack-form").addEventListener("submit", submitAck);
  $("ack-cancel").addEventListener("click", () => $("ack-dialog").close());
  $("key-forget").addEventListener("click", () => {
    apiKey = null;
    $("key-forget").hidden = true;
    notice("The API key was forgotten.");
  });
  $("trace-h").setAttribute("tabindex", "-1");
  window.addEventListener("hashchange", route);
  loadStatus();
  scheduleRefresh();
  route();
}

document.addEventListener("DOMContentLoaded", init);
