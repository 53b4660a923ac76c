// Debian's Chromium (driven by playwright-core) signing in to a small app
// that uses openid-client 6.8.9 (tests/oidc-client) with derp as its
// OpenID Connect provider: the app sends the browser to derp, the user signs
// in on the hosted page, allows the app on the consent page, is back in the
// app signed in, then signs out through RP-initiated logout. Screenshots
// land in tests/browser/artifacts/oidc-*.png.
//
//   DERP_BIN=target/debug/derp node tests/browser/oidc.mjs

import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const client = await import(pathToFileURL(path.join(root, "tests/oidc-client/node_modules/openid-client/build/index.js")));
const derpBin = process.env.DERP_BIN || path.join(root, "target/debug/derp");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const artifacts = path.join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });

const cleanups = [];
const results = [];
const deadline = setTimeout(() => { console.error("browser test timed out"); finish(1); }, 180_000);

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

// --- derp as the provider ----------------------------------------------------
const derpPort = await freePort();
const appPort = await freePort();
const derpUrl = `http://127.0.0.1:${derpPort}`;
const appUrl = `http://127.0.0.1:${appPort}`;
const secret = "wiki-secret-0123456789abcdef";
const tmp = mkdtempSync(path.join(os.tmpdir(), "derp-oidc-browser-"));
cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
writeFileSync(path.join(tmp, "derp.toml"), `
[server]
bind = "127.0.0.1:${derpPort}"
data_dir = "${tmp}/data"
[auth.native]
enable_confirmation = false
[hosted]
product_name = "Acme"
[oidc_provider]
[oidc_provider.clients.wiki]
name = "Team Wiki"
secret = "${secret}"
redirect_uris = ["${appUrl}/callback"]
post_logout_redirect_uris = ["${appUrl}/bye"]
scopes = ["openid", "email", "profile"]
`);
const derp = spawn(derpBin, ["serve", "--config", path.join(tmp, "derp.toml")], { stdio: ["ignore", "ignore", "inherit"] });
cleanups.push(() => derp.kill());
await waitFor(() => fetch(`${derpUrl}/healthz`).then((r) => r.ok, () => false), "derp to start");
const password = "correct horse battery";
const up = await fetch(`${derpUrl}/api/v1/auth/sign-up`, {
  method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ email: "carol@example.com", password }),
});
if (!up.ok) throw new Error(`sign-up: ${up.status}`);

// --- the app: openid-client, every check on (plain http allowed) -------------
const config = await client.discovery(new URL(derpUrl), "wiki", undefined, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] });
const flows = new Map(); // state -> {verifier, nonce}
const sessions = new Map(); // cookie -> {claims, id_token}
const cookieOf = (req) => (req.headers.cookie || "").split(/;\s*/).find((c) => c.startsWith("app="))?.slice(4);
const app = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, appUrl);
    const session = sessions.get(cookieOf(req));
    if (url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(session
        ? `<!doctype html><title>Wiki</title><h1 id="who">Signed in as ${session.claims.email}</h1><a id="logout" href="/logout">Sign out</a>`
        : `<!doctype html><title>Wiki</title><h1>Team Wiki</h1><a id="signin" href="/login">Sign in with Acme</a>`);
      return;
    }
    if (url.pathname === "/login") {
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      flows.set(state, { verifier, nonce });
      const to = client.buildAuthorizationUrl(config, {
        redirect_uri: `${appUrl}/callback`, scope: "openid email profile", state, nonce,
        code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
      });
      res.writeHead(302, { location: to.href }); res.end();
      return;
    }
    if (url.pathname === "/callback") {
      const flow = flows.get(url.searchParams.get("state"));
      if (!flow) { res.writeHead(400); res.end("unknown state"); return; }
      const tokens = await client.authorizationCodeGrant(config, url, {
        pkceCodeVerifier: flow.verifier, expectedState: url.searchParams.get("state"), expectedNonce: flow.nonce, idTokenExpected: true,
      });
      const id = client.randomState();
      sessions.set(id, { claims: tokens.claims(), id_token: tokens.id_token });
      res.writeHead(302, { location: "/", "set-cookie": `app=${id}; Path=/; HttpOnly` }); res.end();
      return;
    }
    if (url.pathname === "/logout" && session) {
      sessions.delete(cookieOf(req));
      const to = client.buildEndSessionUrl(config, { id_token_hint: session.id_token, post_logout_redirect_uri: `${appUrl}/bye`, state: "bye" });
      res.writeHead(302, { location: to.href }); res.end();
      return;
    }
    if (url.pathname === "/bye") {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<!doctype html><title>Bye</title><h1 id="bye">Signed out (${url.searchParams.get("state")})</h1>`);
      return;
    }
    res.writeHead(404); res.end();
  } catch (e) {
    res.writeHead(500, { "content-type": "text/plain" }); res.end(String(e));
  }
});
await new Promise((r) => app.listen(appPort, "127.0.0.1", r));
cleanups.push(() => app.close());

// --- the browser -------------------------------------------------------------
const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
cleanups.push(() => browser.close());
const page = await (await browser.newContext()).newPage();
const shot = (name) => page.screenshot({ path: path.join(artifacts, `oidc-${name}.png`), fullPage: true });
function expect(cond, message) { if (!cond) throw new Error(message); }
async function step(name, fn) {
  try { await fn(); results.push(true); console.log(`ok   ${name}`); }
  catch (e) { results.push(false); console.log(`FAIL ${name}: ${e.message}`); }
}

await step("the app sends the browser to derp, which signs in, asks consent and sends it back", async () => {
  await page.goto(appUrl);
  await page.click("#signin");
  await page.waitForURL(/\/login\?/);
  await shot("01-login");
  await page.fill("#email", "carol@example.com");
  await page.fill("#password", password);
  await page.click("main button[type=submit]");
  await page.waitForSelector("text=Allow Team Wiki?");
  await shot("02-consent");
  await page.click("button[value=allow]");
  await page.waitForURL(`${appUrl}/`).catch(async (e) => {
    throw new Error(`${e.message}\nat ${page.url()}: ${(await page.content()).slice(0, 600)}`);
  });
  const who = await page.textContent("#who");
  expect(who === "Signed in as carol@example.com", who);
  await shot("03-in-the-app");
});

await step("the consent is remembered and listed under Connected apps", async () => {
  await page.goto(`${derpUrl}/account`);
  expect(await page.isVisible("text=Connected apps"), "Connected apps on /account");
  expect(await page.isVisible("text=Team Wiki"), "the app is listed");
  await shot("04-connected-apps");
});

await step("signing out in the app signs out of derp and comes back", async () => {
  await page.goto(appUrl);
  await page.click("#logout");
  await page.waitForURL(`${appUrl}/bye?state=bye`);
  expect((await page.textContent("#bye")) === "Signed out (bye)", "back in the app");
  await page.goto(`${derpUrl}/account`);
  await page.waitForURL(`${derpUrl}/login`);
});

await step("signing in again goes straight back to the app (consent remembered)", async () => {
  await page.goto(appUrl);
  await page.click("#signin");
  await page.waitForURL(/\/login\?/);
  await page.fill("#email", "carol@example.com");
  await page.fill("#password", password);
  await page.click("main button[type=submit]");
  await page.waitForURL(`${appUrl}/`);
  expect((await page.textContent("#who")) === "Signed in as carol@example.com", "signed in again");
});

finish(0);

async function finish(code) {
  clearTimeout(deadline);
  for (const c of cleanups.reverse()) { try { await c(); } catch { /* already gone */ } }
  const passed = results.filter(Boolean).length;
  console.log(`${passed} passed, ${results.length - passed} failed`);
  process.exit(code || (results.includes(false) || results.length === 0 ? 1 : 0));
}
