// A real browser (Debian's Chromium, driven by playwright-core) through
// derp's hosted pages: an app sends the browser to derp, the user signs up,
// confirms by mail, comes back to the app signed in; signs in again; creates
// an org and invites a member who accepts. Mail goes through a real SMTP
// server (smtp-server). Screenshots land in target/browser/ (page-width.png).
// axe-core checks every page shot, and again with a light brand colour.
//
//   DERP_BIN=target/debug/derp node tests/browser/run.mjs

import { chromium } from "playwright-core";
import { SMTPServer } from "smtp-server";
import { simpleParser } from "mailparser";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const derpBin = process.env.DERP_BIN || path.join(root, "target/debug/derp");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const artifacts = path.join(root, "target", "browser");
const axeSource = readFileSync(path.join(here, "node_modules/axe-core/axe.min.js"), "utf8");
mkdirSync(artifacts, { recursive: true });

const results = [];
const cleanups = [];
const deadline = setTimeout(() => { console.error("browser test timed out"); finish(1); }, 240_000);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on("error", reject);
  });
}

async function waitFor(fn, what, ms = 15_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// --- SMTP inbox -------------------------------------------------------------
const inbox = [];
const smtpPort = await freePort();
const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS"],
  onData(stream, _session, done) {
    simpleParser(stream).then((mail) => { inbox.push(mail); done(); }, done);
  },
});
await new Promise((r) => smtp.listen(smtpPort, "127.0.0.1", r));
cleanups.push(() => smtp.close());

function mailTo(address, subjectPart) {
  return waitFor(() => inbox.find((m) => m.to?.text.includes(address) && m.subject.includes(subjectPart)), `mail to ${address}`);
}

function linkIn(mail, pathPart) {
  const m = mail.text.match(new RegExp(`https?://\\S*${pathPart}\\S*`));
  if (!m) throw new Error(`no ${pathPart} link in: ${mail.text}`);
  return m[0];
}

// --- derp -------------------------------------------------------------------
const derpPort = await freePort();
const appPort = await freePort();
const derpUrl = `http://127.0.0.1:${derpPort}`;
const appUrl = `http://127.0.0.1:${appPort}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), "derp-browser-"));
cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
writeFileSync(path.join(tmp, "derp.toml"), `
[server]
bind = "127.0.0.1:${derpPort}"
data_dir = "${tmp}/data"
[auth.native]
enable_confirmation = true
[email]
site_name = "Acme"
from_email = "Acme <no-reply@acme.test>"
smtp_host = "127.0.0.1"
smtp_port = ${smtpPort}
tls = "none"
[hosted]
allowed_redirect_urls = ["${appUrl}/callback"]
product_name = "Acme"
primary_color = "#0f766e"
[rate_limit]
lockout_after = 3
`);
const derp = spawn(derpBin, ["serve", "--config", path.join(tmp, "derp.toml")], { stdio: ["ignore", "ignore", "inherit"] });
cleanups.push(() => derp.kill());
await waitFor(() => fetch(`${derpUrl}/healthz`).then((r) => r.ok, () => false), "derp to start");

// --- the app: sends browsers to derp, exchanges the code --------------------
const pending = new Map(); // state -> PKCE verifier
const app = http.createServer(async (req, res) => {
  const url = new URL(req.url, appUrl);
  if (url.pathname === "/") {
    const state = randomBytes(12).toString("hex");
    const verifier = randomBytes(48).toString("base64url");
    pending.set(state, verifier);
    const challenge = createHash("sha256").update(verifier).digest("base64url");
    const login = new URL("/login", derpUrl);
    login.search = new URLSearchParams({ redirect_to: `${appUrl}/callback`, state, code_challenge: challenge, code_challenge_method: "S256" });
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><title>Demo app</title><h1>Demo app</h1><a id="signin" href="${login}">Sign in with Acme</a>`);
    return;
  }
  if (url.pathname === "/callback") {
    const state = url.searchParams.get("state");
    const verifier = pending.get(state);
    pending.delete(state);
    if (!verifier) { res.writeHead(400); res.end("unknown state"); return; }
    const r = await fetch(`${derpUrl}/api/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: "authorization_code", code: url.searchParams.get("code"), code_verifier: verifier, redirect_uri: `${appUrl}/callback` }),
    });
    const body = await r.json();
    if (!r.ok) { res.writeHead(401, { "content-type": "text/plain" }); res.end(JSON.stringify(body)); return; }
    const who = await fetch(`${derpUrl}/api/v1/auth/session`, { headers: { authorization: `Bearer ${body.tokens.access_token}` } }).then((x) => x.json());
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><title>Signed in</title><h1 id="who">Signed in as ${body.user.email}</h1><p id="uid">${who.user_id}</p>`);
    return;
  }
  res.writeHead(404); res.end();
});
await new Promise((r) => app.listen(appPort, "127.0.0.1", r));
cleanups.push(() => app.close());

// --- the browser ------------------------------------------------------------
const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
cleanups.push(() => browser.close());

async function step(name, fn) {
  try {
    await fn();
    results.push([name, true]);
    console.log(`ok   ${name}`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL ${name}: ${e.message}`);
  }
}

function expect(cond, message) { if (!cond) throw new Error(message); }

// Every page shot is also checked for horizontal overflow on a phone (390 px)
// and a laptop (1,280 px), and shot at both widths.
const overflows = [];
// axe-core on every page shot, hosted pages and admin console alike: serious
// and critical violations fail the run.
const axeFindings = [];
const axeCounts = { pages: 0, violations: 0, serious: 0 };
const visited = new Map(); // name -> URL, for the light-colour pass
async function axeCheck(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  axeCounts.pages += 1;
  axeCounts.violations += result.violations.length;
  for (const v of result.violations) {
    if (v.impact !== "serious" && v.impact !== "critical") {
      console.log(`     axe (${v.impact}) ${name}: ${v.id}`);
    }
    if (v.impact === "serious" || v.impact === "critical") {
      axeCounts.serious += 1;
      const where = v.nodes.slice(0, 2).map((n) => n.target.join(" ")).join(", ");
      const finding = `${name}: ${v.id} (${v.impact}) at ${where}`;
      axeFindings.push(finding);
    }
  }
}
// `posted`: the page answered a form post, so the light-colour pass cannot
// load it again with a GET.
async function shot(page, name, { posted = false } = {}) {
  const before = page.viewportSize();
  if (!posted) visited.set(name, page.url());
  await axeCheck(page, name);
  for (const width of [390, 1280]) {
    await page.setViewportSize({ width, height: 800 });
    const extra = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (extra > 0) overflows.push(`${name} at ${width} px: ${extra} px too wide`);
    await page.screenshot({ path: path.join(artifacts, `${name}-${width}.png`), fullPage: true });
  }
  if (before) await page.setViewportSize(before);
}
const password = "correct horse battery";
const alice = browser.newContext();
const aliceCtx = await alice;
const page = await aliceCtx.newPage();

await step("sign up from the app, confirm by mail, land back in the app", async () => {
  await page.goto(appUrl);
  await page.click("#signin");
  await page.waitForURL(/\/login\?/);
  await shot(page, "01-login");
  await page.click("text=Create an account");
  await page.fill("#email", "alice@example.com");
  await page.fill("#password", "short");
  await page.click("main button[type=submit]");
  expect(await page.isVisible("#password-error"), "a weak password is shown beside the field");
  await shot(page, "02-signup-error");
  await page.fill("#password", password);
  await page.click("main button[type=submit]");
  await page.waitForSelector("text=Check your email");
  await shot(page, "03-check-email");
  const mail = await mailTo("alice@example.com", "Confirm");
  await page.goto(linkIn(mail, "/confirm"));
  await shot(page, "04-confirm");
  await page.click("text=Confirm my email");
  await page.waitForURL(`${appUrl}/callback**`);
  const who = await page.textContent("#who");
  expect(who === "Signed in as alice@example.com", who);
});

await step("sign in again from a fresh browser and return to the app", async () => {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  await p.goto(appUrl);
  await p.click("#signin");
  await p.fill("#email", "alice@example.com");
  await p.fill("#password", "wrong password");
  await p.click("main button[type=submit]");
  await p.waitForSelector(".error-box");
  await shot(p, "05-login-error");
  await p.fill("#password", password);
  await p.click("main button[type=submit]");
  await p.waitForURL(`${appUrl}/callback**`);
  expect((await p.textContent("#who")).includes("alice@example.com"), "signed in");
  await ctx.close();
});

await step("account page lists sessions", async () => {
  await page.goto(`${derpUrl}/account`);
  await page.waitForSelector("text=Your account");
  expect(await page.isVisible("text=this browser"), "the current session is marked");
  await shot(page, "06-account");
});

await step("times show in the browser's time zone and the page's language", async () => {
  // The browser is in Tokyo (UTC+9, no daylight saving time).
  const cdp = await aliceCtx.newCDPSession(page);
  await cdp.send("Emulation.setTimezoneOverride", { timezoneId: "Asia/Tokyo" });
  await page.goto(`${derpUrl}/account`);
  const first = page.locator("main table time").first();
  await page.waitForSelector("main table time[data-local]");
  const iso = await first.getAttribute("datetime");
  const shown = (await first.textContent()).replace(/\s+/g, " ");
  const title = await first.getAttribute("title");
  const at = new Date(iso);
  expect(!Number.isNaN(at.getTime()), `datetime ${iso}`);
  const hour = (at.getUTCHours() + 9) % 24;
  const mm = String(at.getUTCMinutes()).padStart(2, "0");
  const h12 = hour % 12 === 0 ? 12 : hour % 12;
  expect(shown.includes(`${h12}:${mm} ${hour < 12 ? "AM" : "PM"}`), `Tokyo time in English: "${shown}" for ${iso}`);
  expect(title && title.endsWith("UTC"), `the UTC time stays as the title: ${title}`);
  // German: a 24-hour clock.
  await page.goto(`${derpUrl}/account?lang=de`);
  await page.waitForSelector("main table time[data-local]");
  const de = (await page.locator("main table time").first().textContent()).replace(/\s+/g, " ");
  expect(de.includes(`${String(hour).padStart(2, "0")}:${mm}`) && !/AM|PM/.test(de), `Tokyo time in German: "${de}"`);
  // Not again in the light pass: its ?lang=de would stick.
  await shot(page, "06a-account-de-tokyo", { posted: true });
  await page.goto(`${derpUrl}/account?lang=en`);
});

await step("create an org and invite a member who accepts", async () => {
  await page.goto(`${derpUrl}/orgs/new`);
  // The slug follows the name as it is typed…
  await page.fill("#name", "Équipe Été Straße");
  let slug = await page.inputValue("#slug");
  expect(slug === "equipe-ete-strasse", `suggested slug: ${slug}`);
  await page.fill("#name", "Rocket Tea");
  slug = await page.inputValue("#slug");
  expect(slug === "rocket-tea", `suggested slug: ${slug}`);
  await shot(page, "06b-org-new");
  // …until it is edited by hand.
  await page.fill("#slug", "rocket");
  await page.locator("#name").press("End");
  await page.locator("#name").pressSequentially("m");
  expect(await page.inputValue("#name") === "Rocket Team", "the name is typed on");
  slug = await page.inputValue("#slug");
  expect(slug === "rocket", `a hand-made slug is kept: ${slug}`);
  await page.click("main button[type=submit]");
  await page.waitForURL(`${derpUrl}/orgs/rocket`);
  await page.fill("#email", "bob@example.com");
  await page.selectOption("#invite-role", "admin");
  await page.click("text=Send invitation");
  await page.waitForSelector("text=Invitation sent.");
  await shot(page, "07-org");
  const invite = await mailTo("bob@example.com", "invited");
  const link = linkIn(invite, "/invitations/");

  const bobCtx = await browser.newContext();
  const bob = await bobCtx.newPage();
  await bob.goto(link);
  await shot(bob, "08-invitation-anonymous");
  await bob.click("text=Create one with bob@example.com");
  await bob.fill("#email", "bob@example.com");
  await bob.fill("#password", password);
  await bob.click("main button[type=submit]");
  await bob.waitForSelector("text=Check your email");
  const confirm = await mailTo("bob@example.com", "Confirm");
  await bob.goto(linkIn(confirm, "/confirm"));
  await bob.click("text=Confirm my email");
  await bob.waitForURL(link);
  await shot(bob, "09-invitation-signed-in");
  await bob.click("text=Accept the invitation");
  await bob.waitForURL(`${derpUrl}/orgs/rocket`);
  expect(await bob.isVisible("text=Welcome to Rocket Team!"), "flash after accepting");
  await page.reload();
  expect(await page.isVisible("text=bob@example.com"), "the owner sees the new member");
  await bobCtx.close();
});

await step("an app that is not allow-listed gets an error page, not a redirect", async () => {
  const resp = await page.goto(`${derpUrl}/login?redirect_to=${encodeURIComponent("https://evil.example.com/cb")}`);
  expect(resp.status() === 400, `status ${resp.status()}`);
  expect(page.url().startsWith(derpUrl), "stayed on derp");
  await shot(page, "10-refused-redirect");
});

await step("an admin finds a user, disables them and sees the audit entry", async () => {
  const made = spawn(derpBin, ["admin", "create", "--config", path.join(tmp, "derp.toml"), "--email", "admin@example.com", "--password", password], { stdio: "ignore" });
  const code = await new Promise((r) => made.on("exit", r));
  expect(code === 0, `derp admin create exited ${code}`);
  const ctx = await browser.newContext();
  const a = await ctx.newPage();
  await a.goto(`${derpUrl}/admin`);
  await a.waitForURL(/\/login\?redirect_to=/);
  await a.fill("#email", "admin@example.com");
  await a.fill("#password", password);
  await a.click("main button[type=submit]");
  // Back where the admin started, with the console in the header.
  await a.waitForURL(`${derpUrl}/admin`);
  await a.waitForSelector("svg.chart");
  expect(await a.getAttribute(".admin-nav a[href='/admin']", "aria-current") === "page", "the nav marks the overview");
  expect(await a.isVisible("header a[href='/admin']"), "the header links the console");
  await shot(a, "11-admin-overview");
  await a.goto(`${derpUrl}/admin/users`);
  await a.fill("#q", "bob");
  await a.click("text=Search");
  await a.waitForSelector("a:has-text('bob@example.com')");
  await shot(a, "12-admin-users");
  await a.click("a:has-text('bob@example.com')");
  await a.waitForSelector("h1:has-text('bob@example.com')");
  await a.click("text=Disable…");
  // Nothing happens before the confirmation step says what will.
  await a.waitForSelector("h1:has-text('Disable bob@example.com?')");
  await shot(a, "13a-admin-confirm", { posted: true });
  await a.click("button:has-text('Disable user')");
  await a.waitForSelector("text=The user is disabled and signed out everywhere.");
  await shot(a, "13-admin-user");
  await a.goto(`${derpUrl}/admin/audit?action=admin.user.disabled`);
  const row = await a.textContent("table tbody");
  expect(row.includes("admin.user.disabled"), "the audit entry is listed");
  await shot(a, "14-admin-audit");
  await a.goto(`${derpUrl}/admin/audit?user=bob%40example.com&from=2000-01-01`);
  await shot(a, "14a-admin-audit-filtered");
  await a.goto(`${derpUrl}/admin/config`);
  await a.waitForSelector("h2:has-text('[server]')");
  await shot(a, "14b-admin-config");
  await a.goto(`${derpUrl}/admin/orgs`);
  await shot(a, "15-admin-orgs");
  await a.click("text=Rocket Team");
  await shot(a, "16-admin-org");
  // Webhooks: an endpoint made in the console, its secret shown once.
  await a.goto(`${derpUrl}/admin/webhooks`);
  await a.fill("#name", "billing-app-with-a-rather-long-name");
  await a.fill("#url", "http://127.0.0.1:9/hooks/derp/a-long-path/that-should-wrap-on-a-phone");
  await a.fill("#events", "user.*, org.member.added");
  await a.click("text=Create endpoint");
  await a.waitForSelector("text=Signing secret: shown this once.");
  await shot(a, "17a-admin-webhook");
  await a.goto(`${derpUrl}/admin/webhooks`);
  await shot(a, "17b-admin-webhooks");
  await a.goto(`${derpUrl}/admin/clients`);
  await shot(a, "17c-admin-clients");
  await a.goto(`${derpUrl}/admin/outbox`);
  expect(await a.isVisible("text=sent"), "the outbox shows sent mail");
  await shot(a, "17-admin-outbox");
  // Three wrong passwords lock an address; the admin sees and clears it.
  for (let i = 0; i < 3; i++) {
    const r = await fetch(`${derpUrl}/api/v1/auth/sign-in`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "bob@example.com", password: "a-wrong-password-1" }) });
    expect(r.status === 401, `wrong password ${i}: ${r.status}`);
  }
  const refused = await fetch(`${derpUrl}/api/v1/auth/sign-in`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "bob@example.com", password }) });
  expect(refused.status === 429 && refused.headers.get("retry-after"), `locked: ${refused.status}`);
  await a.goto(`${derpUrl}/admin/lockouts`);
  await a.waitForSelector("td:has-text('bob@example.com')");
  await shot(a, "18-admin-lockouts");
  await a.click("text=Clear lock");
  await a.waitForSelector("text=bob@example.com can sign in again.");
  expect(await a.isVisible("text=No address is locked."), "the lock is gone");
  await ctx.close();
});

await step("a long name without spaces keeps the org page inside the screen", async () => {
  await page.goto(`${derpUrl}/orgs/new`);
  await page.fill("#name", "Supercalifragilisticexpialidocious".repeat(2));
  await page.fill("#slug", "long-name-org");
  await page.click("main button[type=submit]");
  await page.waitForURL(`${derpUrl}/orgs/long-name-org`);
  await shot(page, "19-org-long-name");
});

await step("no page is wider than the screen at 390 px or 1,280 px", async () => {
  console.log(`     overflow: ${overflows.length} page widths too wide`);
  expect(overflows.length === 0, overflows.join("; "));
});

await step("axe-core finds no serious or critical violation on any page", async () => {
  console.log(`     axe: ${axeCounts.pages} pages, ${axeCounts.violations} violations, ${axeCounts.serious} serious or critical`);
  expect(axeFindings.length === 0, axeFindings.join("; "));
});

await step("with a light brand colour (#facc15) the pages still pass axe-core", async () => {
  const config = path.join(tmp, "derp.toml");
  writeFileSync(config, readFileSync(config, "utf8").replace('primary_color = "#0f766e"', 'primary_color = "#facc15"'));
  derp.kill("SIGHUP");
  await waitFor(() => fetch(`${derpUrl}/static/theme.css`).then((r) => r.text()).then((t) => t.includes("#facc15"), () => false), "the new colour");
  const start = { ...axeCounts };
  axeFindings.length = 0;
  for (const [name, url] of visited) {
    if (!url.startsWith(derpUrl)) continue;
    await page.goto(url);
    if (!page.url().startsWith(derpUrl)) continue; // signed in: straight back to the app
    await axeCheck(page, `${name} (light)`);
  }
  console.log(`     axe (light): ${axeCounts.pages - start.pages} pages, ${axeCounts.violations - start.violations} violations, ${axeCounts.serious - start.serious} serious or critical`);
  expect(axeFindings.length === 0, axeFindings.join("; "));
});

await step("sign out", async () => {
  await page.goto(`${derpUrl}/account`);
  await page.click("text=Sign out >> nth=0");
  await page.waitForURL(`${derpUrl}/login`);
  await page.goto(`${derpUrl}/account`);
  await page.waitForURL(`${derpUrl}/login`);
});

finish(0);

async function finish(code) {
  clearTimeout(deadline);
  for (const c of cleanups.reverse()) { try { await c(); } catch { /* already gone */ } }
  const passed = results.filter((r) => r[1]).length;
  const failed = results.length - passed;
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code || (failed > 0 || results.length === 0 ? 1 : 0));
}
