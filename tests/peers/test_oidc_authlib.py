"""derp as an OpenID Connect provider, with Authlib (a client library nobody
here wrote) as the relying party: discovery, the authorization code flow
with PKCE (S256), state and nonce through derp's hosted pages (driven with
plain HTTP), client_secret_post at the token endpoint, the id_token checked
by Authlib's CodeIDToken (iss, aud, exp, iat, nonce, at_hash) against the
published JWKS, userinfo, refresh, and a wrong redirect URI refused."""

import html
import os
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken

ROOT = Path(__file__).resolve().parents[2]
DERP_BIN = os.environ.get("DERP_BIN", str(ROOT / "target" / "debug" / "derp"))
SECRET = "authlib-secret-0123456789abcdef"
CALLBACK = "http://127.0.0.1:9/callback"
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def derp():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = free_port()
        config = tmp / "derp.toml"
        config.write_text(f"""
[server]
bind = "127.0.0.1:{port}"
data_dir = "{tmp / 'data'}"
[auth.native]
enable_confirmation = false
[oidc_provider]
[oidc_provider.clients.authlib]
name = "Authlib app"
secret = "{SECRET}"
redirect_uris = ["{CALLBACK}"]
scopes = ["openid", "email", "profile", "offline_access"]
first_party = true
""")
        proc = subprocess.Popen([DERP_BIN, "serve", "--config", str(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{base}/readyz")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def hidden(page: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert m, f"no {name} on the page"
    return html.unescape(m.group(1))


def browse_to_callback(base: str, browser: httpx.Client, url: str, email: str) -> str:
    """Follows derp's pages from the authorization URL to the app's callback."""
    res = browser.get(url)
    assert res.status_code == 303, res.text
    nxt = res.headers["location"]
    if nxt.startswith("/login"):
        page = browser.get(base + nxt).text
        res = browser.post(f"{base}/login", data={
            "csrf_token": hidden(page, "csrf_token"),
            "redirect_to": hidden(page, "redirect_to"),
            "email": email,
            "password": PASSWORD,
        })
        assert res.status_code == 303, res.text
        res = browser.get(res.headers["location"])
        nxt = res.headers["location"]
    assert nxt.startswith(CALLBACK), nxt
    return nxt


def test_authlib_signs_in_through_derp(derp):
    base = derp
    email = "authlib@example.com"
    up = httpx.post(f"{base}/api/v1/auth/sign-up", json={"email": email, "password": PASSWORD})
    assert up.status_code in (200, 201), up.text
    meta = httpx.get(f"{base}/.well-known/openid-configuration").json()
    assert meta["issuer"] == base
    assert "S256" in meta["code_challenge_methods_supported"]

    client = OAuth2Client(
        client_id="authlib", client_secret=SECRET,
        token_endpoint_auth_method="client_secret_post",
        redirect_uri=CALLBACK, scope="openid email profile offline_access",
        code_challenge_method="S256",
    )
    verifier = "authlib-verifier-" + "x" * 40
    nonce = "nonce-authlib-1"
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    with httpx.Client(follow_redirects=False) as browser:
        callback = browse_to_callback(base, browser, url, email)
    token = client.fetch_token(meta["token_endpoint"], authorization_response=callback,
                               code_verifier=verifier, state=state)
    assert token["token_type"].lower() == "bearer"

    jwks = JsonWebKey.import_key_set(httpx.get(meta["jwks_uri"]).json())
    claims = jwt.decode(
        token["id_token"], jwks, claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": base}},
        claims_params={"nonce": nonce, "client_id": "authlib",
                       "access_token": token["access_token"]},
    )
    claims.validate(leeway=60)
    assert claims["email"] == email

    info = client.get(meta["userinfo_endpoint"]).json()
    assert info["sub"] == claims["sub"]
    assert info["email"] == email

    renewed = client.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    assert renewed["access_token"] != token["access_token"]
    assert renewed["refresh_token"] != token["refresh_token"]

    # A redirect URI that is not registered: an error page, no redirect.
    bad, _ = OAuth2Client(client_id="authlib", redirect_uri="http://127.0.0.1:9/evil",
                          scope="openid").create_authorization_url(meta["authorization_endpoint"])
    res = httpx.get(bad, follow_redirects=False)
    assert res.status_code == 400
    assert "location" not in res.headers
