// Second factors through the client against a live derp: a sign-in that
// answers mfa_required, finished with a TOTP or a recovery code, and a derp
// that requires every user to enroll (mfa_enrollment_required). TOTP codes
// are computed here (RFC 6238: HMAC-SHA1, 6 digits, 30 s).
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, test } from "node:test";
import { DerpClient, DerpError } from "../dist/index.js";
import { PASSWORD, newEmail, startDerp } from "./derp.mjs";

function base32(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of s.replace(/=+$/, "")) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(Number.parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

export function totp(secret, atSeconds) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(atSeconds / 30)));
  const digest = createHmac("sha1", base32(secret)).update(counter).digest();
  const offset = digest[digest.length - 1] & 0x0f;
  const value = digest.readUInt32BE(offset) & 0x7fffffff;
  return String(value % 1_000_000).padStart(6, "0");
}

const now = () => Date.now() / 1000;

async function rejects(promise, status, code) {
  let caught;
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof DerpError, String(e));
    assert.equal(e.status, status, e.message);
    assert.equal(e.code, code);
    caught = e;
    return true;
  });
  return caught;
}

let server;
let required;
let derp;
before(async () => {
  server = await startDerp();
  required = await startDerp({ extra: "[auth.native.mfa]\nrequired = true\n" });
  derp = new DerpClient(server.url);
});
after(() => {
  server?.stop();
  required?.stop();
});

test("the test TOTP matches RFC 6238's vector", () => {
  // Seed "12345678901234567890" in base32, T = 59 s.
  assert.equal(totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 59), "287082");
});

async function enrolled(email) {
  const up = await derp.auth.signUp({ email, password: PASSWORD });
  const pending = await derp.auth.enrollTotp({ accessToken: up.tokens.access_token, name: "Phone" });
  assert.ok(pending.otpauth_url.startsWith("otpauth://totp/"));
  const done = await derp.auth.verifyTotp({
    factorId: pending.factor_id,
    code: totp(pending.secret, now()),
    accessToken: up.tokens.access_token,
  });
  assert.equal(done.factor.id, pending.factor_id);
  assert.equal(done.recovery_codes.length, 10);
  return { pending, done };
}

test("a sign-in with a factor answers mfa_required; a TOTP code finishes it", async () => {
  const email = newEmail("mfa");
  const { pending, done } = await enrolled(email);
  const first = await derp.auth.signInWithPassword(email, PASSWORD);
  assert.equal(first.mfa_required, true);
  assert.equal(first.user, null);
  assert.equal(first.tokens, null);
  assert.deepEqual(first.factors.map((f) => f.id), [pending.factor_id]);
  await rejects(derp.auth.completeMfa(first.mfa_token, "000000"), 401, "invalid_code");
  // The next time step's code: the current one was spent on enrollment.
  const result = await derp.auth.completeMfa(first.mfa_token, totp(pending.secret, now() + 30));
  assert.equal(result.user.email, email);
  const session = await derp.auth.verifyAccessToken(result.tokens.access_token);
  for (const m of ["pwd", "otp", "mfa"]) assert.ok(session.claims.amr.includes(m), String(session.claims.amr));
  // Single use.
  await rejects(derp.auth.completeMfa(first.mfa_token, done.recovery_codes[0]), 401, "invalid_token");
});

test("a recovery code finishes a sign-in once", async () => {
  const email = newEmail("recovery");
  const { done } = await enrolled(email);
  const first = await derp.auth.signInWithPassword(email, PASSWORD);
  const result = await derp.auth.completeMfa(first.mfa_token, done.recovery_codes[2]);
  assert.ok(result.tokens.access_token);
  const again = await derp.auth.signInWithPassword(email, PASSWORD);
  await rejects(derp.auth.completeMfa(again.mfa_token, done.recovery_codes[2]), 401, "invalid_code");
});

test("a derp that requires a second factor makes the user enroll to sign in", async () => {
  const client = new DerpClient(required.url);
  const email = newEmail("enroll");
  const up = await client.auth.signUp({ email, password: PASSWORD });
  assert.equal(up.tokens, null);
  assert.equal(up.mfa_enrollment_required, true);
  assert.ok(up.enrollment_token);
  const e = await rejects(client.auth.signInWithPassword(email, PASSWORD), 403, "mfa_enrollment_required");
  assert.ok(e.enrollmentToken);
  const pending = await client.auth.enrollTotp({ enrollmentToken: e.enrollmentToken });
  const done = await client.auth.verifyTotp({
    factorId: pending.factor_id,
    code: totp(pending.secret, now()),
    enrollmentToken: e.enrollmentToken,
  });
  assert.equal(done.user.email, email);
  assert.equal(done.recovery_codes.length, 10);
  const session = await client.auth.verifyAccessToken(done.tokens.access_token);
  assert.ok(session.claims.amr.includes("mfa"));
  const next = await client.auth.signInWithPassword(email, PASSWORD);
  assert.equal(next.mfa_required, true);
});
