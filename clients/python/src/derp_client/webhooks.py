"""Standard Webhooks (https://www.standardwebhooks.com) signatures, as derp
signs its deliveries: headers `webhook-id`, `webhook-timestamp`,
`webhook-signature` = space-separated `v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`, secret `whsec_<base64>`."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any, Mapping

from .errors import WebhookVerificationError

TOLERANCE_SECONDS = 5 * 60


def _secret_bytes(secret: str | bytes) -> bytes:
    if isinstance(secret, bytes):
        key = secret
    else:
        raw = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
        try:
            key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
        except (binascii.Error, ValueError) as e:
            raise ValueError("the webhook secret must be whsec_<base64>") from e
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def _as_bytes(payload: str | bytes) -> bytes:
    return payload.encode() if isinstance(payload, str) else payload


def sign_webhook(secret: str | bytes, msg_id: str, timestamp: int, payload: str | bytes) -> str:
    """The `webhook-signature` value (`v1,<base64>`) of one message."""
    to_sign = f"{msg_id}.{int(timestamp)}.".encode() + _as_bytes(payload)
    mac = hmac.new(_secret_bytes(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_webhook(
    payload: str | bytes,
    headers: Mapping[str, str],
    secret: str | bytes,
    *,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> Any:
    """Checks a delivery and returns its parsed JSON body.

    `payload` must be the raw body exactly as received (bytes are best: a
    re-serialised JSON body will not verify). Raises WebhookVerificationError
    when a header is missing, the timestamp is more than `tolerance` seconds
    away from now, or no `v1` signature matches."""
    h = {str(k).lower(): v for k, v in headers.items()}
    msg_id, ts, sigs = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not (msg_id and ts and sigs):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(ts)
    except ValueError as e:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from e
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise WebhookVerificationError("message timestamp too old")
    if timestamp > current + tolerance:
        raise WebhookVerificationError("message timestamp too new")
    expected = base64.b64decode(sign_webhook(secret, msg_id, timestamp, payload)[3:])
    for candidate in sigs.split():
        version, _, sig = candidate.partition(",")
        if version != "v1":
            continue
        try:
            got = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, got):
            return json.loads(_as_bytes(payload))
    raise WebhookVerificationError("no matching signature")
