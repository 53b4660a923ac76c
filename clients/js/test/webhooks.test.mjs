// verifyWebhook against the standardwebhooks package (an independent
// implementation of the same specification): each signs, the other verifies.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { Webhook, WebhookVerificationError as TheirError } from "standardwebhooks";
import { WebhookVerificationError, signWebhook, verifyWebhook } from "../dist/index.js";

const SECRET = `whsec_${randomBytes(32).toString("base64")}`;
const BODY = JSON.stringify({ type: "user.created", timestamp: "2026-01-01T00:00:00Z", data: { id: "u1", email: "é@example.com" } });
const now = () => Math.floor(Date.now() / 1000);

function theirs(id, ts, body = BODY, secret = SECRET) {
  return { "webhook-id": id, "webhook-timestamp": String(ts), "webhook-signature": new Webhook(secret).sign(id, new Date(ts * 1000), body) };
}

test("we verify what they sign", () => {
  const h = theirs("msg_1", now());
  assert.deepEqual(verifyWebhook(BODY, h, SECRET), JSON.parse(BODY));
  assert.deepEqual(verifyWebhook(Buffer.from(BODY), new Headers(h), SECRET), JSON.parse(BODY));
  const other = theirs("msg_1", now(), BODY, `whsec_${Buffer.alloc(32, 1).toString("base64")}`)["webhook-signature"];
  const several = { "Webhook-Id": "msg_1", "Webhook-Timestamp": h["webhook-timestamp"], "Webhook-Signature": `${other} ${h["webhook-signature"]}` };
  assert.equal(verifyWebhook(BODY, several, SECRET).type, "user.created");
});

test("they verify what we sign", () => {
  const ts = now();
  const sig = signWebhook(SECRET, "msg_2", ts, BODY);
  assert.deepEqual(new Webhook(SECRET).verify(BODY, { "webhook-id": "msg_2", "webhook-timestamp": String(ts), "webhook-signature": sig }), JSON.parse(BODY));
  assert.equal(sig, new Webhook(SECRET).sign("msg_2", new Date(ts * 1000), BODY));
});

test("changes are refused by both", () => {
  const changes = [
    (h, b) => [h, b.replace("u1", "u2")],
    (h, b) => [{ ...h, "webhook-id": "msg_other" }, b],
    (h, b) => [{ ...h, "webhook-timestamp": String(Number(h["webhook-timestamp"]) + 1) }, b],
    (h, b) => [{ ...h, "webhook-signature": h["webhook-signature"].replace("v1,", "v2,") }, b],
    (h, b) => [{ "webhook-id": h["webhook-id"], "webhook-timestamp": h["webhook-timestamp"] }, b],
  ];
  for (const change of changes) {
    const [h, b] = change(theirs("msg_3", now()), BODY);
    assert.throws(() => verifyWebhook(b, h, SECRET), WebhookVerificationError);
    assert.throws(() => new Webhook(SECRET).verify(b, h), TheirError);
  }
  assert.throws(() => verifyWebhook(BODY, theirs("m", now()), `whsec_${Buffer.alloc(32, 2).toString("base64")}`), WebhookVerificationError);
});

test("timestamp tolerance is five minutes", () => {
  for (const ts of [now() - 299, now() + 299]) assert.ok(verifyWebhook(BODY, theirs("m", ts), SECRET));
  for (const ts of [now() - 301, now() + 301]) {
    const h = theirs("m", ts);
    assert.throws(() => verifyWebhook(BODY, h, SECRET), WebhookVerificationError);
    assert.throws(() => new Webhook(SECRET).verify(BODY, h), TheirError);
  }
});
