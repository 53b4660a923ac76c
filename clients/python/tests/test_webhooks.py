"""verify_webhook against the `standardwebhooks` package (an independent
implementation of the same specification): each signs, the other verifies."""

import base64
import binascii
import json
import os
import time
from datetime import datetime, timezone

import pytest
import standardwebhooks

from derp_client import WebhookVerificationError, sign_webhook, verify_webhook

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
BODY = json.dumps({"type": "user.created", "timestamp": "2026-01-01T00:00:00Z", "data": {"id": "u1", "email": "é@example.com"}})


def theirs_headers(msg_id: str, ts: int, body: str, secret: str = SECRET) -> dict:
    sig = standardwebhooks.Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=timezone.utc), body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}


def test_we_verify_what_they_sign():
    now = int(time.time())
    headers = theirs_headers("msg_1", now, BODY)
    assert verify_webhook(BODY.encode(), headers, SECRET) == json.loads(BODY)
    # Header names in any case, several signatures (rotation), one matching.
    other = theirs_headers("msg_1", now, BODY, "whsec_" + base64.b64encode(b"x" * 32).decode())["webhook-signature"]
    mixed = {"Webhook-Id": "msg_1", "Webhook-Timestamp": str(now), "Webhook-Signature": f"{other} {headers['webhook-signature']}"}
    assert verify_webhook(BODY, mixed, SECRET)["type"] == "user.created"


def test_they_verify_what_we_sign():
    now = int(time.time())
    sig = sign_webhook(SECRET, "msg_2", now, BODY)
    headers = {"webhook-id": "msg_2", "webhook-timestamp": str(now), "webhook-signature": sig}
    assert standardwebhooks.Webhook(SECRET).verify(BODY, headers) == json.loads(BODY)
    assert sig == standardwebhooks.Webhook(SECRET).sign("msg_2", datetime.fromtimestamp(now, tz=timezone.utc), BODY)


@pytest.mark.parametrize(
    "change",
    [
        lambda h, b: (h, b.replace("u1", "u2")),  # body changed
        lambda h, b: ({**h, "webhook-id": "msg_other"}, b),  # id changed
        lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) + 1)}, b),
        lambda h, b: ({**h, "webhook-signature": h["webhook-signature"].replace("v1,", "v2,")}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b),
        lambda h, b: ({**h, "webhook-signature": "v1,not base64!"}, b),
    ],
)
def test_changes_are_refused_by_both(change):
    headers, body = change(theirs_headers("msg_3", int(time.time()), BODY), BODY)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, headers, SECRET)
    # (standardwebhooks lets binascii.Error out for a signature that is not base64.)
    with pytest.raises((standardwebhooks.webhooks.WebhookVerificationError, binascii.Error)):
        standardwebhooks.Webhook(SECRET).verify(body, headers)


def test_timestamp_tolerance_is_five_minutes():
    now = int(time.time())
    for ts in (now - 299, now + 299):
        assert verify_webhook(BODY, theirs_headers("m", ts, BODY), SECRET)
    for ts in (now - 301, now + 301):
        headers = theirs_headers("m", ts, BODY)
        with pytest.raises(WebhookVerificationError):
            verify_webhook(BODY, headers, SECRET)
        with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
            standardwebhooks.Webhook(SECRET).verify(BODY, headers)


def test_wrong_secret_is_refused():
    headers = theirs_headers("m", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY, headers, "whsec_" + base64.b64encode(b"y" * 32).decode())
