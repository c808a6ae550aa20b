// Drives Debian's Chromium (headless, through playwright-core) against a
// running perf-sentinel daemon that tests/tests/dashboard.rs has fed with
// traces, and checks what a user of the dashboard sees. Exits non-zero on
// the first failed check.
//
// Environment: DAEMON_URL (http://127.0.0.1:PORT), API_KEY (the daemon's ack
// key), CHROMIUM (browser binary), SHOT_DIR (where screenshots go),
// EXPECT_N1 (spans of the order-svc N+1), XSS (the string planted in a trace).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const need = (name) => {
  const v = process.env[name];
  if (!v) { console.error(`dashboard.mjs: ${name} is not set`); process.exit(2); }
  return v;
};
const base = need("DAEMON_URL");
const apiKey = need("API_KEY");
const shotDir = need("SHOT_DIR");
const expectN1 = Number(need("EXPECT_N1"));
const xss = need("XSS");
const started = Date.now();

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

const browser = await chromium.launch({
  executablePath: need("CHROMIUM"),
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run"],
});
const dialogs = [];
const problems = [];
const refusals = [];
function watch(page) {
  page.on("dialog", async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    // The refusals the test provokes on purpose are logged by the browser.
    const provoked = /Failed to load resource: .* status of (401|409)/.exec(m.text());
    if (provoked) refusals.push(provoked[1]); else problems.push(`console: ${m.text()}`);
  });
  page.setDefaultTimeout(10_000);
}

let failed = false;
try {
  mkdirSync(shotDir, { recursive: true });
  const api = async (path) => (await fetch(base + path)).json();
  const all = await api("/api/findings?limit=1000");
  check(all.length >= 3, `the daemon holds ${all.length} findings before the browser starts`);

  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: "light" });
  const page = await ctx.newPage();
  watch(page);
  await page.goto(`${base}/ui/`);

  // --- the findings appear, with counts per type
  const items = page.locator("#findings-list > li");
  await page.waitForFunction((n) => document.querySelectorAll("#findings-list > li").length === n, all.length);
  check((await items.count()) === all.length, `the list shows all ${all.length} folded findings`);
  const n1 = all.filter((f) => f.type === "n_plus_one_sql").length;
  const chip = page.locator('#type-counts button[data-type="n_plus_one_sql"]');
  check((await chip.textContent()).trim() === `n_plus_one_sql ${n1}`, `the type count reads n_plus_one_sql ${n1}`);

  // --- filtering: by service, by severity, by type chip
  await page.selectOption("#f-service", "billing-svc");
  check((await items.count()) === all.filter((f) => f.service === "billing-svc").length
    && (await items.first().textContent()).includes("billing-svc"), "filtering by service keeps only billing-svc");
  await page.selectOption("#f-service", "");
  for (const sev of ["critical", "warning", "info"]) {
    await page.selectOption("#f-severity", sev);
    const want = all.filter((f) => f.severity === sev).length;
    check((await items.count()) === want, `severity ${sev} shows ${want} findings, as the API says`);
  }
  await page.selectOption("#f-severity", "");
  await chip.click();
  check((await items.count()) === n1 && (await chip.getAttribute("aria-pressed")) === "true", "the type chip filters by type");
  await chip.click();
  check((await items.count()) === all.length, "clicking the chip again clears the filter");

  // --- strings from traces are text: the planted markup shows as is
  const xssItem = items.filter({ hasText: xss });
  check((await xssItem.count()) >= 1, "the finding whose service holds <script> shows it as text");
  check(await page.evaluate(() => document.querySelectorAll("script").length === 1
    && document.querySelectorAll("img").length === 1), "no element was created from trace data");
  await page.screenshot({ path: join(shotDir, "dashboard-findings-light.png") });

  // --- keyboard: Enter on a finding opens its trace with the N+1 spans highlighted
  const order = all.find((f) => f.service === "order-svc" && f.type === "n_plus_one_sql");
  check(order !== undefined, "the API has the order-svc N+1");
  await page.locator(`#findings-list button.open[data-signature="${order.signature}"]`).focus();
  await page.keyboard.press("Enter");
  await page.waitForSelector("#span-tree > li");
  check(page.url().includes(`#/trace/${order.trace_id}`), "Enter opened the finding's trace");
  const hits = page.locator('#span-tree > li[data-hit="true"]');
  check((await hits.count()) === expectN1, `${expectN1} spans are highlighted`);
  const hitTargets = await hits.locator(".target").allTextContents();
  check(hitTargets.every((t) => t.startsWith("SELECT * FROM items WHERE order_id = ")), "the highlighted spans are the repeated SELECTs");
  check((await page.locator('#span-tree > li[data-hit="false"]').count()) === 1, "the root span is not highlighted");
  const detail = await page.locator("#trace-finding").textContent();
  check(detail.includes(order.suggestion) && detail.includes("Suggestion"), "the suggestion is shown");
  check(detail.includes("orders.rs:42"), "the code location is shown");
  const widths = await page.$$eval("#span-tree .bar", (bars) => bars.map((b) => b.getBoundingClientRect().width));
  check(widths[0] > widths[1] * 10, "durations are drawn as bars (root bar far wider than a SELECT)");
  await page.screenshot({ path: join(shotDir, "dashboard-trace-light.png"), fullPage: false });

  // --- the planted statement renders as text in the span tree
  const evil = all.find((f) => f.service.includes(xss));
  await page.goto(`${base}/ui/#/trace/${evil.trace_id}`);
  await page.waitForFunction((id) => document.getElementById("trace-h").textContent.includes(id), evil.trace_id);
  await page.waitForSelector("#span-tree > li");
  const targets = await page.locator("#span-tree .target").allTextContents();
  check(targets.some((t) => t.includes(xss)), "a SQL statement holding <script> is shown as text");
  check(await page.evaluate(() => document.querySelectorAll("script").length === 1), "no script element came from the trace");

  // --- acknowledge: a wrong key shows the 401 message, the right one hides the finding
  await page.goto(`${base}/ui/#/findings`);
  await page.waitForFunction((n) => document.querySelectorAll("#findings-list > li").length === n, all.length);
  const billing = all.find((f) => f.service === "billing-svc" && f.type === "n_plus_one_sql");
  await page.locator(`#findings-list button.ack[data-signature="${billing.signature}"]`).click();
  await page.fill("#ack-by", "browser-test");
  await page.fill("#ack-reason", "seen in the dashboard test");
  await page.fill("#ack-key", "not-the-key");
  await page.click("#ack-submit");
  await page.waitForSelector("#ack-error:not([hidden])");
  const err = await page.locator("#ack-error").textContent();
  check(err.includes("401") && /API key/.test(err), `a wrong key shows: ${err}`);
  await page.fill("#ack-key", apiKey);
  await page.click("#ack-submit");
  await page.waitForFunction((n) => document.querySelectorAll("#findings-list > li").length === n, all.length - 1);
  check((await page.locator(`#findings-list li[data-signature="${billing.signature}"]`).count()) === 0,
    "the acknowledged finding left the list");
  const acked = await api("/api/findings?include_acked=true&limit=1000");
  const stored = acked.find((f) => f.signature === billing.signature);
  check(stored && stored.acknowledged_by && stored.acknowledged_by.by === "browser-test", "the daemon recorded who acknowledged");
  check(await page.evaluate((k) => !JSON.stringify(window.localStorage).includes(k)
    && !JSON.stringify(window.sessionStorage).includes(k) && !document.cookie.includes(k), apiKey),
  "the key is kept nowhere but the page's memory");

  // A second acknowledgment of the same signature is refused with 409.
  await page.check("#f-acked");
  const row = page.locator(`#findings-list li[data-signature="${billing.signature}"]`);
  await row.waitFor();
  check((await row.textContent()).includes("acknowledged by browser-test"), "include acknowledged shows it with who");

  // Revoke: the key is remembered for the page's lifetime.
  await row.locator("button.revoke").click();
  check((await page.inputValue("#ack-key")) === apiKey, "the key is prefilled from memory");
  await page.click("#ack-submit");
  await page.waitForFunction((sig) => {
    const li = [...document.querySelectorAll("#findings-list > li")].find((l) => l.dataset.signature === sig);
    return li && li.querySelector("button.ack");
  }, billing.signature);
  check(true, "revoking brings back the Acknowledge button");
  await page.uncheck("#f-acked");
  await page.waitForFunction((n) => document.querySelectorAll("#findings-list > li").length === n, all.length);
  check(true, "the revoked finding is back in the default list");

  // Someone else acknowledges a finding the page still shows: 409, as a sentence.
  await page.uncheck("#f-refresh");
  const other = all.find((f) => f.service === "billing-svc" && f.signature !== billing.signature);
  const path = `/api/findings/${encodeURIComponent(other.signature)}/ack`;
  const first = await fetch(base + path, { method: "POST", headers: { "X-API-Key": apiKey } });
  check(first.status === 201, "acknowledged behind the page's back through the API");
  await page.locator(`#findings-list button.ack[data-signature="${other.signature}"]`).click();
  await page.click("#ack-submit");
  await page.waitForSelector("#ack-error:not([hidden])");
  const conflict = await page.locator("#ack-error").textContent();
  check(conflict.includes("Already acknowledged (409)"), `a second acknowledgment shows: ${conflict}`);
  await page.click("#ack-cancel");
  const undo = await fetch(base + path, { method: "DELETE", headers: { "X-API-Key": apiKey } });
  check(undo.status === 204, "revoked through the API");
  await page.check("#f-refresh");

  // --- detectors
  await page.click('nav a[data-view="detectors"]');
  const det = page.locator('#detectors-table tr[data-detector="n_plus_one_sql"]');
  await det.waitFor();
  const cells = await det.locator("td").allTextContents();
  check(cells[1] === "built-in" && cells[2] === "yes" && cells[3] === "no" && Number(cells[5]) >= 3,
    `the n_plus_one_sql row reads ${cells.slice(1).join(" | ")}`);

  // --- energy: the waste ratio matches /api/status
  await page.click('nav a[data-view="energy"]');
  await page.waitForSelector("#energy-cards .card");
  const status = await api("/api/status");
  const ratio = await page.locator("#energy-cards .card").first().textContent();
  const shown = `${(status.io.io_waste_ratio * 100).toFixed(1)} %`;
  check(status.io.io_waste_ratio > 0 && ratio.includes(shown), `the I/O waste ratio reads ${shown}`);
  check((await page.locator('#backends-table tr[data-backend="scaphandre"]').textContent()).includes("not configured"),
    "unconfigured backends are listed as such");

  // --- dark theme through the toggle
  await page.click('nav a[data-view="findings"]');
  await page.waitForFunction((n) => document.querySelectorAll("#findings-list > li").length === n, all.length);
  await page.click("#theme-toggle");
  const bg = await page.evaluate(() => [document.documentElement.dataset.theme, getComputedStyle(document.body).backgroundColor]);
  check(bg[0] === "dark" && bg[1] === "rgb(13, 17, 23)", `the toggle switches to the dark theme (${bg.join(", ")})`);
  await page.mouse.move(0, 0);
  await page.screenshot({ path: join(shotDir, "dashboard-findings-dark.png") });
  await page.locator(`#findings-list button.open[data-signature="${order.signature}"]`).click();
  await page.waitForSelector('#span-tree > li[data-hit="true"]');
  await page.screenshot({ path: join(shotDir, "dashboard-trace-dark.png") });
  await ctx.close();

  // --- the system's dark preference, at phone width
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark", deviceScaleFactor: 1 });
  const p2 = await phone.newPage();
  watch(p2);
  await p2.goto(`${base}/ui/`);
  await p2.waitForSelector("#findings-list > li");
  const fit = await p2.evaluate(() => [document.documentElement.scrollWidth, getComputedStyle(document.body).backgroundColor]);
  check(fit[0] <= 390, `nothing overflows at 390 px (scroll width ${fit[0]})`);
  check(fit[1] === "rgb(13, 17, 23)", "prefers-color-scheme: dark gives the dark theme");
  await p2.screenshot({ path: join(shotDir, "dashboard-phone-dark.png") });
  await phone.close();

  check(dialogs.length === 0, `no JavaScript dialog opened (${dialogs.join("; ")})`);
  check(refusals.sort().join() === "401,409", `the browser saw exactly the provoked 401 and 409 (${refusals.join()})`);
  check(problems.length === 0, `no page error, console error or CSP violation (${problems.join("; ")})`);
} catch (e) {
  failed = true;
  console.error(e && e.stack ? e.stack : String(e));
  if (problems.length) console.error(`page problems:\n${problems.join("\n")}`);
} finally {
  await browser.close();
}
console.log(`dashboard.mjs: ${failed ? "FAILED" : "passed"} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(failed ? 1 : 0);
