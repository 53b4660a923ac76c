// verifyAccessToken: derp's JWKS (cached, one rate-limited refetch on an
// unknown kid) or the HS256 secret; the algorithm pinned to the key's.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, test } from "node:test";
import { SignJWT, decodeJwt, decodeProtectedHeader } from "jose";
import { DerpClient, DerpError } from "../dist/index.js";
import { HS256_SECRET, PASSWORD, freePort, newEmail, startDerp } from "./derp.mjs";

let server;
before(async () => {
  server = await startDerp();
});
after(() => server?.stop());

const b64 = (o) => Buffer.from(typeof o === "string" ? o : JSON.stringify(o)).toString("base64url");
const auth = (t) => ({ authorization: `Bearer ${t}` });

async function signedUp(client) {
  const email = newEmail();
  return { email, ...(await client.auth.signUp({ email, password: PASSWORD })) };
}

test("a valid token gives the session, with the keys cached", async () => {
  const derp = new DerpClient(server.url);
  const { email, user, tokens } = await signedUp(derp);
  const s = await derp.verifyAccessToken(tokens.access_token);
  assert.equal(s.user_id, user.id);
  assert.equal(s.email, email);
  assert.equal(s.role, "default");
  assert.equal(s.org_id, null);
  assert.equal(s.expires_at, tokens.expires_at);
  const remote = await derp.auth.getSession(tokens.access_token);
  assert.deepEqual([remote.user_id, remote.session_id, remote.expires_at], [s.user_id, s.session_id, s.expires_at]);
  for (let i = 0; i < 5; i++) assert.ok(await derp.auth.authenticate(auth(tokens.access_token)));
  assert.equal(derp.verifier.options.jwks.fetches, 1);
  assert.equal(await derp.auth.authenticate({}), null);
  assert.equal(await derp.auth.authenticate(auth("not.a.jwt")), null);
});

test("expired, tampered, other issuer or audience: refused", async () => {
  const derp = new DerpClient(server.url);
  const { tokens } = await signedUp(derp);
  const later = new DerpClient(server.url, { now: () => new Date(Date.now() + 16 * 60_000) });
  await assert.rejects(later.verifyAccessToken(tokens.access_token), (e) => e instanceof DerpError && e.code === "invalid_token" && /expired/.test(e.message));
  const [h, p, s] = tokens.access_token.split(".");
  const claims = decodeJwt(tokens.access_token);
  assert.equal(await derp.auth.authenticate(auth(`${h}.${b64({ ...claims, role: "admin" })}.${s}`)), null);
  assert.equal(await derp.auth.authenticate(auth(`${h}.${p}.${s.slice(0, -2)}${s.endsWith("AA") ? "BB" : "AA"}`)), null);
  assert.equal(await new DerpClient(server.url, { issuer: "https://else.example" }).auth.authenticate(auth(tokens.access_token)), null);
  assert.equal(await new DerpClient(server.url, { audience: "my-app" }).auth.authenticate(auth(tokens.access_token)), null);
});

test("the algorithm is pinned to the key", async () => {
  const derp = new DerpClient(server.url);
  const { tokens } = await signedUp(derp);
  const header = decodeProtectedHeader(tokens.access_token);
  assert.equal(header.alg, "EdDSA");
  assert.equal(header.typ, "at+jwt");
  const [, p, s] = tokens.access_token.split(".");
  assert.equal(await derp.auth.authenticate(auth(`${b64({ ...header, alg: "none" })}.${p}.`)), null);
  assert.equal(await derp.auth.authenticate(auth(`${b64({ ...header, alg: "ES256" })}.${p}.${s}`)), null);
  const jwks = await (await fetch(`${server.url}/.well-known/jwks.json`)).json();
  const pub = jwks.keys.find((k) => k.kid === header.kid);
  for (const secret of [pub.x, JSON.stringify(pub)]) {
    const head = b64({ alg: "HS256", typ: "at+jwt", kid: header.kid });
    const sig = createHmac("sha256", secret).update(`${head}.${p}`).digest("base64url");
    assert.equal(await derp.auth.authenticate(auth(`${head}.${p}.${sig}`)), null);
  }
});

test("an unknown kid refetches once, rate limited", async () => {
  const derp = new DerpClient(server.url);
  const { tokens } = await signedUp(derp);
  assert.ok(await derp.auth.authenticate(auth(tokens.access_token)));
  const [h, p, s] = tokens.access_token.split(".");
  const unknown = `${b64({ ...decodeProtectedHeader(tokens.access_token), kid: "nope" })}.${p}.${s}`;
  for (let i = 0; i < 3; i++) assert.equal(await derp.auth.authenticate(auth(unknown)), null);
  assert.equal(derp.verifier.options.jwks.fetches, 1, "no refetch within the interval");
  const eager = new DerpClient(server.url, { jwksRefetchIntervalMs: 0 });
  assert.ok(await eager.auth.authenticate(auth(`${h}.${p}.${s}`)));
  assert.equal(await eager.auth.authenticate(auth(unknown)), null);
  assert.equal(eager.verifier.options.jwks.fetches, 2, "one refetch for the unknown kid");
});

test("key rotation (derp keys rotate) is picked up on the new kid", async () => {
  const rotating = await startDerp();
  try {
    const derp = new DerpClient(rotating.url, { jwksRefetchIntervalMs: 0 });
    const { email, tokens } = await signedUp(derp);
    assert.ok(await derp.auth.authenticate(auth(tokens.access_token)));
    await rotating.restart(() => rotating.cli("keys", "rotate"));
    const again = await derp.auth.signInWithPassword(email, PASSWORD);
    assert.notEqual(decodeProtectedHeader(again.tokens.access_token).kid, decodeProtectedHeader(tokens.access_token).kid);
    const before = derp.verifier.options.jwks.fetches;
    assert.ok(await derp.auth.authenticate(auth(again.tokens.access_token)));
    assert.equal(derp.verifier.options.jwks.fetches, before + 1);
    assert.ok(await derp.auth.authenticate(auth(tokens.access_token)), "the retired key still verifies");
  } finally {
    await rotating.stop();
  }
});

test("HS256 with the secret", async () => {
  const hs = await startDerp({ hs256: true });
  try {
    const derp = new DerpClient(hs.url, { jwtSecret: HS256_SECRET });
    const { user, tokens } = await signedUp(derp);
    assert.equal(decodeProtectedHeader(tokens.access_token).alg, "HS256");
    assert.equal((await derp.verifyAccessToken(tokens.access_token)).user_id, user.id);
    const claims = decodeJwt(tokens.access_token);
    const key = new TextEncoder().encode(HS256_SECRET);
    const sign = (c, alg = "HS256", typ = "at+jwt") => new SignJWT(c).setProtectedHeader({ alg, typ }).sign(key);
    assert.equal(await derp.auth.authenticate(auth(await sign({ ...claims, exp: Math.floor(Date.now() / 1000) - 5 }))), null);
    assert.equal(await derp.auth.authenticate(auth(await sign({ ...claims, iss: "https://evil.example" }))), null);
    assert.equal(await derp.auth.authenticate(auth(await sign(claims, "HS256", "JWT"))), null);
    assert.equal(await derp.auth.authenticate(auth(await sign(claims, "HS512"))), null);
    assert.ok(await derp.auth.authenticate(auth(await sign(claims))), "a re-signed copy of the genuine claims verifies");
  } finally {
    await hs.stop();
  }
});

test("an unreachable JWKS is an error, not a refusal, and is retried", async () => {
  const { tokens } = await signedUp(new DerpClient(server.url));
  const blind = new DerpClient(server.url, { jwksUrl: `http://127.0.0.1:${await freePort()}/jwks` });
  for (let i = 0; i < 2; i++) {
    await assert.rejects(blind.auth.authenticate(auth(tokens.access_token)), (e) => e instanceof DerpError && e.code === "network_error");
  }
  assert.equal(blind.verifier.options.jwks.fetches, 2);
});
