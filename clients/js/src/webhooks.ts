/**
 * Standard Webhooks signatures, as derp signs its deliveries: headers
 * `webhook-id`, `webhook-timestamp`, `webhook-signature` = space-separated
 * `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, secret `whsec_<base64>`.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { WebhookVerificationError } from "./errors.js";
import { headerOf, type RequestLike } from "./client.js";

export const WEBHOOK_TOLERANCE_SECONDS = 5 * 60;

function secretBytes(secret: string | Uint8Array): Buffer {
  if (typeof secret !== "string") return Buffer.from(secret);
  const raw = secret.startsWith("whsec_") ? secret.slice(6) : secret;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(raw)) throw new TypeError("the webhook secret must be whsec_<base64>");
  const key = Buffer.from(raw, "base64");
  if (key.length === 0) throw new TypeError("the webhook secret is empty");
  return key;
}

const bytes = (payload: string | Uint8Array): Buffer => (typeof payload === "string" ? Buffer.from(payload, "utf8") : Buffer.from(payload));

/** The `webhook-signature` value (`v1,<base64>`) of one message. */
export function signWebhook(secret: string | Uint8Array, msgId: string, timestamp: number, payload: string | Uint8Array): string {
  const mac = createHmac("sha256", secretBytes(secret))
    .update(`${msgId}.${Math.floor(timestamp)}.`)
    .update(bytes(payload))
    .digest("base64");
  return `v1,${mac}`;
}

/**
 * Checks a delivery and returns its parsed JSON body. `payload` must be the
 * raw body as received (`express.raw()`), not re-serialised JSON. Throws
 * WebhookVerificationError on a missing header, a timestamp more than
 * `toleranceSeconds` from now, or no matching `v1` signature.
 */
export function verifyWebhook<T = unknown>(
  payload: string | Uint8Array,
  headers: RequestLike,
  secret: string | Uint8Array,
  options: { toleranceSeconds?: number; now?: number } = {},
): T {
  const id = headerOf(headers, "webhook-id");
  const ts = headerOf(headers, "webhook-timestamp");
  const sigs = headerOf(headers, "webhook-signature");
  if (!id || !ts || !sigs) throw new WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature");
  if (!/^\d+$/.test(ts)) throw new WebhookVerificationError("webhook-timestamp is not an integer");
  const timestamp = Number(ts);
  const now = options.now ?? Date.now() / 1000;
  const tolerance = options.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS;
  if (timestamp < now - tolerance) throw new WebhookVerificationError("message timestamp too old");
  if (timestamp > now + tolerance) throw new WebhookVerificationError("message timestamp too new");
  const expected = Buffer.from(signWebhook(secret, id, timestamp, payload).slice(3), "base64");
  for (const candidate of sigs.split(" ")) {
    const [version, sig] = candidate.split(",", 2);
    if (version !== "v1" || !sig) continue;
    const got = Buffer.from(sig, "base64");
    if (got.length === expected.length && timingSafeEqual(got, expected)) {
      return JSON.parse(bytes(payload).toString("utf8")) as T;
    }
  }
  throw new WebhookVerificationError("no matching signature");
}
