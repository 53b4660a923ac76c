"""derp with the Clerk backend: the X-Org-Context value that derp's
set_active_org makes is read locally by authenticate(). Clerk is a small
stand-in here (its JWKS and users endpoints); the session tokens are signed
by the test with its own RSA key, as Clerk would."""

import json
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from conftest import DerpServer
from cryptography.hazmat.primitives.asymmetric import rsa

from derp_client import DerpClient, DerpError

ORG_CONTEXT_SECRET = "an-org-context-secret-of-32-bytes-or-more"
ISSUER = "https://clerk.example.test"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWK = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key())), "kid": "k1", "alg": "RS256", "use": "sig"}

CLERK_TOML = """
[server]
bind = "127.0.0.1:{{port}}"
data_dir = "{{data}}"
[auth.clerk]
secret_key = "sk_test_stand_in"
api_url = "{api}"
[auth]
org_context_secret = "{secret}"
"""


class FakeClerk(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path == "/v1/jwks":
            body = {"keys": [JWK]}
        elif self.path.startswith("/v1/users/"):
            uid = self.path.rsplit("/", 1)[1]
            body = {
                "id": uid,
                "primary_email_address_id": "idn_1",
                "email_addresses": [{"id": "idn_1", "email_address": f"{uid}@example.com", "verification": {"status": "verified"}}],
                "created_at": 1_700_000_000_000,
                "public_metadata": {},
            }
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def clerk():
    api = ThreadingHTTPServer(("127.0.0.1", 0), FakeClerk)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    api_url = f"http://127.0.0.1:{api.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        server = DerpServer(Path(tmp), toml=CLERK_TOML.format(api=api_url, secret=ORG_CONTEXT_SECRET)).start()
        try:
            yield server, api_url
        finally:
            server.stop()
            api.shutdown()


def session_token(sub: str, sid: str, **extra) -> str:
    now = int(time.time())
    claims = {"sub": sub, "sid": sid, "iss": ISSUER, "iat": now, "nbf": now - 5, "exp": now + 60, **extra}
    return jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": "k1"})


async def test_org_context_from_derp_is_verified_locally(clerk):
    server, api_url = clerk
    sub, sid = f"user_{uuid.uuid4().hex[:12]}", f"sess_{uuid.uuid4().hex[:12]}"
    token = session_token(sub, sid)
    async with DerpClient(
        server.url,
        backend="clerk",
        jwks_url=f"{api_url}/v1/jwks",
        issuer=ISSUER,
        org_context_secret=ORG_CONTEXT_SECRET,
    ) as derp:
        org = await derp.auth.create_org(name="Clerk org", slug=f"c-{uuid.uuid4().hex[:8]}", access_token=token)
        ctx = (await derp.auth.set_active_org(access_token=token, org_id=org.id)).access_token
        assert ctx.startswith("oc1.")

        headers = {"Authorization": f"Bearer {token}", "X-Org-Context": ctx}
        session = await derp.auth.authenticate(headers)
        assert (session.user_id, session.session_id) == (sub, sid)
        assert (session.org_id, session.org_role) == (org.id, "owner")
        # derp's own answer agrees.
        remote = await derp.auth.get_session(token, org_context=ctx)
        assert (remote.org_id, remote.org_role) == (org.id, "owner")

        # Tampered, or another login session of the same user: no org.
        head, payload, mac = ctx.split(".")
        assert (await derp.auth.authenticate({**headers, "X-Org-Context": f"{head}.{payload}.{mac[:-2]}AA"})).org_id is None
        other_login = session_token(sub, "sess_other")
        assert (await derp.auth.authenticate({"Authorization": f"Bearer {other_login}", "X-Org-Context": ctx})).org_id is None
        assert (await derp.auth.get_session(other_login, org_context=ctx)).org_id is None
        # Clerk's __session cookie works as the bearer does.
        class Req:
            headers = {"x-org-context": ctx}
            cookies = {"__session": token}

        assert (await derp.auth.authenticate(Req())).org_id == org.id

    # Without the secret the header cannot be checked: no org.
    async with DerpClient(server.url, backend="clerk", jwks_url=f"{api_url}/v1/jwks", issuer=ISSUER) as plain:
        assert (await plain.auth.authenticate(headers)).org_id is None
    # Flows Clerk keeps to itself: 501.
    async with DerpClient(server.url) as c:
        with pytest.raises(DerpError) as e:
            await c.auth.sign_in_with_password("a@example.com", "whatever password")
        assert (e.value.status, e.value.code) == (501, "not_supported_by_backend")
