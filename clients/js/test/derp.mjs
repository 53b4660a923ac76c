// A live derp for the tests: the real binary ($DERP_BIN, else the repo's
// target/debug/derp) on a free port, with a temp data dir and a derp.toml
// written here. The dev mailer writes mails to the server log, where
// mailToken finds their links.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, closeSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { randomUUID } from "node:crypto";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const DERP_BIN = process.env.DERP_BIN ?? join(ROOT, "target/debug/derp");
export const PASSWORD = "correct horse battery";
export const HS256_SECRET = "test-secret-that-is-at-least-32-bytes-long!";
export const SERVICE_KEY = "test-service-key-with-at-least-32-bytes-x";
export const CALLBACK = "http://app.test/callback";

export const newEmail = (prefix = "user") => `${prefix}-${randomUUID().slice(0, 10)}@example.com`;

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `toml(port, dataDir)` replaces the whole configuration when given. */
export async function startDerp({ hs256 = false, confirmation = false, toml, extra = "" } = {}) {
  const tmp = mkdtempSync(join(tmpdir(), "derp-js-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = join(tmp, "derp.toml");
  const jwt = hs256 ? `secret = "${HS256_SECRET}"\nalgorithm = "HS256"` : 'algorithm = "EdDSA"';
  writeFileSync(
    config,
    toml ? toml(port, join(tmp, "data")) : `[server]
bind = "127.0.0.1:${port}"
data_dir = "${join(tmp, "data")}"
[auth.native]
enable_confirmation = ${confirmation}
enable_magic_link = true
refresh_reuse_grace_seconds = 0
[auth.native.jwt]
${jwt}
[auth.native.google_oauth]
client_id = "test-client"
client_secret = "test-client-secret"
redirect_uri = "${url}/api/v1/auth/oauth/google/callback"
authorization_url = "http://127.0.0.1:9/authorize"
token_url = "http://127.0.0.1:9/token"
userinfo_url = "http://127.0.0.1:9/userinfo"
jwks_url = "http://127.0.0.1:9/jwks"
[hosted]
allowed_redirect_urls = ["${CALLBACK}"]
[admin]
service_keys = ["${SERVICE_KEY}"]
[rate_limit]
sign_in_per_ip = 0
sign_in_per_account = 0
sign_up_per_ip = 0
email_per_address = 0
lockout_after = 0
${extra}`,
  );
  const log = join(tmp, "derp.log");
  let proc;
  let exited = true;
  async function launch() {
    const fd = openSync(log, "a");
    proc = spawn(DERP_BIN, ["--config", config, "serve"], {
      stdio: ["ignore", fd, fd],
      env: { ...process.env, NO_COLOR: "1", RUST_LOG: "info" },
    });
    closeSync(fd);
    exited = false;
    proc.on("exit", () => (exited = true));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (exited) throw new Error(`derp exited: ${readFileSync(log, "utf8").slice(-2000)}`);
      try {
        if ((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) })).status === 200) return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) {
        proc.kill("SIGKILL");
        throw new Error("derp did not start within 30 s");
      }
      await sleep(50);
    }
  }
  async function halt() {
    if (exited) return;
    const gone = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await gone;
    clearTimeout(timer);
  }
  await launch();
  // Tokens already handed to a test: mail is sent after derp answers, so the
  // last mail in the log may still be the one before.
  const seenTokens = new Set();
  return {
    url,
    async stop() {
      await halt();
      rmSync(tmp, { recursive: true, force: true });
    },
    /** Stops derp, runs `between` (e.g. a CLI command on its data), starts it again on the same port. */
    async restart(between = () => {}) {
      await halt();
      await between();
      await launch();
    },
    cli(...args) {
      return execFileSync(DERP_BIN, ["--config", config, ...args], { encoding: "utf8", timeout: 30_000 });
    },
    /** The token of the last link mailed to `email` (dev mailer log), waiting for one not handed out before. */
    async mailToken(email, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        const text = readFileSync(log, "utf8").replace(/\x1b\[[0-9;]*m/g, "");
        // "… message follows\n<text>\n-- <site> to=<email> subject=…"
        const last = text.lastIndexOf(`to=${email} `);
        const start = text.lastIndexOf("message follows", last);
        const m = last >= 0 && /token=([A-Za-z0-9_-]{43})/.exec(text.slice(start, last));
        if (m && !seenTokens.has(m[1])) {
          seenTokens.add(m[1]);
          return m[1];
        }
        await sleep(50);
      }
      throw new Error(`no new mail with a token to ${email}`);
    },
  };
}

const unescapeHtml = (s) =>
  s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (_, e) =>
    e[0] === "#" ? String.fromCodePoint(e[1].toLowerCase() === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10))
      : { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" }[e.toLowerCase()]);

/** Signs in on derp's hosted /login page as a browser would; returns the redirect URL. */
export async function browserLogin(loginUrl, email, password) {
  const page = await fetch(loginUrl, { redirect: "manual" });
  if (page.status !== 200) throw new Error(`login page: ${page.status}`);
  const cookie = page.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  const html = await page.text();
  const form = new URLSearchParams();
  for (const m of html.matchAll(/<input type="hidden" name="([a-z_]+)" value="([^"]*)">/g)) form.set(m[1], unescapeHtml(m[2]));
  form.set("email", email);
  form.set("password", password);
  const base = loginUrl.split("/login")[0];
  const res = await fetch(`${base}/login`, { method: "POST", body: form, headers: { cookie }, redirect: "manual" });
  if (res.status !== 302 && res.status !== 303) throw new Error(`login: ${res.status} ${await res.text()}`);
  return new URL(res.headers.get("location"));
}
