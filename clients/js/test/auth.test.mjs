// The .auth calls against a live derp.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { DerpClient, DerpError } from "../dist/index.js";
import { CALLBACK, HS256_SECRET, PASSWORD, browserLogin, freePort, newEmail, startDerp } from "./derp.mjs";

let server;
let derp;
before(async () => {
  server = await startDerp();
  derp = new DerpClient(server.url);
});
after(() => server?.stop());

async function rejects(promise, status, code) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof DerpError, String(e));
    assert.equal(e.status, status, e.message);
    assert.equal(e.code, code);
    return true;
  });
}

test("sign-up, sign-in, user", async () => {
  const email = newEmail();
  const up = await derp.auth.signUp({ email, password: PASSWORD, data: { plan: "pro" } });
  assert.equal(up.user.email, email);
  assert.deepEqual(up.user.data, { plan: "pro" });
  assert.equal(up.tokens.token_type, "bearer");
  const inn = await derp.auth.signInWithPassword(email.toUpperCase(), PASSWORD);
  assert.equal(inn.user.id, up.user.id);
  assert.equal((await derp.auth.getUser(inn.tokens.access_token)).email, email);
});

test("refresh rotates; reuse revokes the login", async () => {
  const first = (await derp.auth.signUp({ email: newEmail(), password: PASSWORD })).tokens;
  const second = await derp.auth.refreshToken(first.refresh_token);
  assert.notEqual(second.refresh_token, first.refresh_token);
  // Grace 0 on the test server: an immediate reuse is reuse.
  await rejects(derp.auth.refreshToken(first.refresh_token), 401, "invalid_token");
  await rejects(derp.auth.refreshToken(second.refresh_token), 401, "invalid_token");
});

test("sign-out", async () => {
  const email = newEmail();
  const a = (await derp.auth.signUp({ email, password: PASSWORD })).tokens;
  const b = (await derp.auth.signInWithPassword(email, PASSWORD)).tokens;
  await derp.auth.signOut(a.access_token);
  await rejects(derp.auth.refreshToken(a.refresh_token), 401, "invalid_token");
  const b2 = await derp.auth.refreshToken(b.refresh_token);
  await derp.auth.signOut(b2.access_token, { scope: "all" });
  await rejects(derp.auth.refreshToken(b2.refresh_token), 401, "invalid_token");
});

test("errors carry status, code, message, fields", async () => {
  const email = newEmail();
  await derp.auth.signUp({ email, password: PASSWORD });
  await rejects(derp.auth.signUp({ email, password: PASSWORD }), 409, "email_exists");
  await rejects(derp.auth.signInWithPassword(email, "wrong password!"), 401, "invalid_credentials");
  await assert.rejects(derp.auth.signUp({ email: "nope", password: PASSWORD }), (e) => e.code === "invalid_request" && "email" in e.fields && Boolean(e.requestId));
  await assert.rejects(derp.auth.signUp({ email: newEmail(), password: "short" }), (e) => e.status === 422 && e.reasons.length > 0);
  const dead = new DerpClient(`http://127.0.0.1:${await freePort()}`);
  await rejects(dead.auth.signInWithPassword(email, PASSWORD), 0, "network_error");
});

test("magic link", async () => {
  const email = newEmail("magic");
  await derp.auth.signInWithMagicLink({ email, magicLinkUrl: `${CALLBACK}/magic` });
  const token = await server.mailToken(email);
  const { user, tokens } = await derp.auth.verifyMagicLink(token);
  assert.equal(user.email, email);
  assert.ok(user.email_confirmed_at);
  assert.equal((await derp.verifyAccessToken(tokens.access_token)).user_id, user.id);
  await rejects(derp.auth.verifyMagicLink(token), 401, "invalid_token");
});

test("hosted pages: login URL with state and PKCE, then the code exchange", async () => {
  const email = newEmail();
  await derp.auth.signUp({ email, password: PASSWORD });
  const login = await derp.auth.createLoginUrl(CALLBACK);
  const u = new URL(login.url);
  assert.equal(u.pathname, "/login");
  assert.equal(u.searchParams.get("state"), login.state);
  assert.equal(u.searchParams.get("code_challenge_method"), "S256");
  assert.match(login.codeVerifier, /^[A-Za-z0-9_-]{43,128}$/);
  const back = await browserLogin(login.url, email, PASSWORD);
  assert.equal(`${back.origin}${back.pathname}`, CALLBACK);
  assert.equal(back.searchParams.get("state"), login.state);
  // A wrong verifier is refused.
  await assert.rejects(derp.auth.exchangeCode(back.searchParams.get("code"), { redirectUri: CALLBACK, codeVerifier: "x".repeat(43) }), DerpError);
  const again = await derp.auth.createLoginUrl(CALLBACK);
  const back2 = await browserLogin(again.url, email, PASSWORD);
  const { user, tokens } = await derp.auth.exchangeCode(back2.searchParams.get("code"), { redirectUri: CALLBACK, codeVerifier: again.codeVerifier });
  assert.equal(user.email, email);
  assert.equal((await derp.auth.authenticate({ headers: { authorization: `Bearer ${tokens.access_token}` } })).email, email);
  // Single use.
  await assert.rejects(derp.auth.exchangeCode(back2.searchParams.get("code"), { redirectUri: CALLBACK, codeVerifier: again.codeVerifier }), DerpError);
});

test("OAuth: the start URL sends the browser to the provider with derp's cookie", async () => {
  const url = derp.auth.getOAuthAuthorizationUrl("google", { state: "s1", redirectTo: CALLBACK, codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" });
  assert.ok(url.startsWith(`${server.url}/oauth/google?`));
  const res = await fetch(url, { redirect: "manual" });
  assert.ok([302, 303].includes(res.status), String(res.status));
  const provider = new URL(res.headers.get("location"));
  assert.equal(provider.pathname, "/authorize");
  assert.equal(provider.searchParams.get("client_id"), "test-client");
  assert.ok(res.headers.getSetCookie().some((c) => c.startsWith("derp_oauth=")));
  await rejects(derp.auth.signInWithOAuth("google", "a-code"), 502, "upstream_error");
  await rejects(derp.auth.signInWithOAuth("nope", "a-code"), 404, "feature_disabled");
});

test("confirmation and HS256 (the original library's configuration)", async () => {
  const hs = await startDerp({ hs256: true, confirmation: true });
  try {
    const client = new DerpClient(hs.url, { jwtSecret: HS256_SECRET });
    const email = newEmail("confirm");
    const up = await client.auth.signUp({ email, password: PASSWORD, confirmationUrl: `${CALLBACK}/confirm` });
    assert.equal(up.confirmation_required, true);
    assert.equal(up.tokens, null);
    await rejects(client.auth.signInWithPassword(email, PASSWORD), 403, "email_not_confirmed");
    const { user, tokens } = await client.auth.confirmEmail(await hs.mailToken(email));
    const session = await client.auth.authenticate(new Headers({ authorization: `Bearer ${tokens.access_token}` }));
    assert.equal(session.user_id, user.id);
    const other = new DerpClient(hs.url, { jwtSecret: "another-secret-of-at-least-32-bytes!!" });
    assert.equal(await other.auth.authenticate(new Headers({ authorization: `Bearer ${tokens.access_token}` })), null);
    const jwksOnly = new DerpClient(hs.url);
    assert.equal(await jwksOnly.auth.authenticate(new Headers({ authorization: `Bearer ${tokens.access_token}` })), null);
  } finally {
    await hs.stop();
  }
});
