// Passkeys in a real browser: Debian's Chromium (through playwright-core)
// with its DevTools virtual authenticator (CTAP2, resident keys, user
// verification). The user adds a passkey on /account/security, signs out,
// signs in with the passkey only, then signs in with the password and
// finishes the second step with the passkey; then, on a derp with
// `[auth.native.mfa] required`, a new user enrolls a passkey on /mfa/enroll
// and ends signed in. derp runs with public_url
// http://localhost:PORT (relying party id `localhost`: WebAuthn refuses IP
// addresses). Screenshots land in tests/browser/artifacts/.
//
//   DERP_BIN=target/debug/derp node tests/browser/passkeys.mjs

import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const derpBin = process.env.DERP_BIN || path.join(root, "target/debug/derp");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const artifacts = path.join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });

const results = [];
const cleanups = [];
const deadline = setTimeout(() => { console.error("passkey browser test timed out"); finish(1); }, 180_000);

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

// --- derp -------------------------------------------------------------------
// One derp per configuration; `extra` is appended to its derp.toml.
async function startDerp(extra = "") {
  const port = await freePort();
  const url = `http://localhost:${port}`;
  const tmp = mkdtempSync(path.join(os.tmpdir(), "derp-passkeys-"));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  writeFileSync(path.join(tmp, "derp.toml"), `
[server]
bind = "127.0.0.1:${port}"
public_url = "${url}"
data_dir = "${tmp}/data"
[auth.native]
enable_confirmation = false
[hosted]
product_name = "Acme"
${extra}`);
  const child = spawn(derpBin, ["serve", "--config", path.join(tmp, "derp.toml")], { stdio: ["ignore", "ignore", "inherit"] });
  cleanups.push(() => child.kill());
  await waitFor(() => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false), "derp to start");
  return { port, url };
}

async function signUp(port, email, password) {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/auth/sign-up`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (res.status !== 201) throw new Error(`sign-up answered ${res.status}`);
  return res.json();
}

const { port: derpPort, url: derpUrl } = await startDerp();
const email = "passkey@example.com";
const password = "correct horse battery";
await signUp(derpPort, email, password);

// --- the browser and its virtual authenticator -------------------------------
const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
cleanups.push(() => browser.close());
const scriptErrors = [];
// A fresh browser profile with its own virtual authenticator.
async function newBrowser() {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  page.on("pageerror", (e) => scriptErrors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") scriptErrors.push(m.text()); });
  return { page, cdp, authenticatorId };
}
const { page, cdp, authenticatorId } = await newBrowser();

async function step(name, fn) {
  try {
    await fn();
    results.push([name, true]);
    console.log(`ok   ${name}`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL ${name}: ${e.message}`);
    await page.screenshot({ path: path.join(artifacts, `passkey-fail-${results.length}.png`), fullPage: true }).catch(() => {});
  }
}

function expect(cond, message) { if (!cond) throw new Error(message); }

async function signOut() {
  await page.goto(`${derpUrl}/logout`);
  await page.click("main button[type=submit]");
  await page.waitForURL(`${derpUrl}/login`);
}

async function signInWithPassword() {
  await page.goto(`${derpUrl}/login`);
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.click("form[action='/login'] button.primary");
}

await step("sign in with the password and add a passkey on /account/security", async () => {
  await signInWithPassword();
  await page.waitForURL(`${derpUrl}/account`);
  await page.goto(`${derpUrl}/account/security`);
  await page.waitForSelector("form[data-passkey=register]:not([hidden])");
  await page.fill("#passkey-name", "This laptop");
  await page.screenshot({ path: path.join(artifacts, "passkey-1-security.png"), fullPage: true });
  await page.click("text=Add a passkey");
  // The first factor: the recovery codes are shown once.
  await page.waitForSelector("text=recovery code");
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  expect(credentials.length === 1, `one credential on the authenticator, got ${credentials.length}`);
  expect(credentials[0].isResidentCredential, "the credential is discoverable (resident)");
  expect(credentials[0].rpId === "localhost", `rp id localhost, got ${credentials[0].rpId}`);
  await page.goto(`${derpUrl}/account/security`);
  await page.waitForSelector("text=This laptop");
  await page.screenshot({ path: path.join(artifacts, "passkey-2-listed.png"), fullPage: true });
});

await step("sign out, then sign in with the passkey only", async () => {
  await signOut();
  await page.waitForSelector("text=Sign in with a passkey");
  await page.screenshot({ path: path.join(artifacts, "passkey-3-login.png"), fullPage: true });
  await page.click("text=Sign in with a passkey");
  await page.waitForURL(`${derpUrl}/account`);
  expect(await page.isVisible(`text=${email}`), "the account page shows the user");
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  expect(credentials[0].signCount >= 1, "the authenticator signed");
});

await step("sign in with the password, then the passkey as the second step", async () => {
  await signOut();
  await signInWithPassword();
  await page.waitForURL(`${derpUrl}/mfa`);
  await page.waitForSelector("text=Use a passkey");
  await page.screenshot({ path: path.join(artifacts, "passkey-4-second-step.png"), fullPage: true });
  await page.click("text=Use a passkey");
  await page.waitForURL(`${derpUrl}/account`);
  expect(await page.isVisible(`text=${email}`), "the account page shows the user");
});

await step("with [auth.native.mfa] required, a new user enrolls a passkey at sign-in", async () => {
  const { port, url } = await startDerp("[auth.native.mfa]\nrequired = true\n");
  const enrolling = "enroll@example.com";
  const up = await signUp(port, enrolling, password);
  expect(up.tokens === null && up.mfa_enrollment_required === true, "no tokens before a factor");
  const b = await newBrowser();
  await b.page.goto(`${url}/login`);
  await b.page.fill("#email", enrolling);
  await b.page.fill("#password", password);
  await b.page.click("form[action='/login'] button.primary");
  await b.page.waitForURL((u) => u.pathname === "/mfa/enroll");
  await b.page.waitForSelector("form[data-passkey=register]:not([hidden])");
  expect(await b.page.isVisible("text=Or add a passkey further down"), "the intro names the passkey, shown with its form");
  await b.page.screenshot({ path: path.join(artifacts, "passkey-5-enroll.png"), fullPage: true });
  await b.page.click("form[data-passkey=register] button[type=submit]");
  await b.page.waitForSelector("text=recovery code");
  const { credentials } = await b.cdp.send("WebAuthn.getCredentials", { authenticatorId: b.authenticatorId });
  expect(credentials.length === 1, `one credential on the authenticator, got ${credentials.length}`);
  await b.page.goto(`${url}/account`);
  await b.page.waitForURL(`${url}/account`);
  expect(await b.page.isVisible(`text=${enrolling}`), "signed in: the account page shows the user");
});

await step("the passkey script ran without errors", async () => {
  expect(scriptErrors.length === 0, scriptErrors.join("; "));
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
