"""Runs the example against a live derp: 401 without a valid token, 200 with one."""

import base64
import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
DERP_BIN = os.environ.get("DERP_BIN", str(ROOT / "target" / "debug" / "derp"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_derp(tmp: Path, port: int, extra: str = "") -> subprocess.Popen:
    config = tmp / "derp.toml"
    config.write_text(
        f'[server]\nbind = "127.0.0.1:{port}"\ndata_dir = "{tmp / "data"}"\n'
        "[auth.native]\nenable_confirmation = false\n" + extra
    )
    proc = subprocess.Popen(
        [DERP_BIN, "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("derp did not start")


@pytest.fixture(scope="module")
def derp():
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = start_derp(Path(tmp), port)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def client(derp):
    os.environ["DERP_URL"] = derp
    import importlib

    import app as example

    importlib.reload(example)
    return TestClient(example.app)


def sign_up(derp: str, email: str) -> dict:
    res = httpx.post(f"{derp}/api/v1/auth/sign-up", json={"email": email, "password": "correct horse battery"})
    assert res.status_code == 201, res.text
    return res.json()


def test_no_token_is_401(client):
    assert client.get("/orders").status_code == 401


def test_garbage_and_tampered_tokens_are_401(derp, client):
    assert client.get("/orders", headers={"Authorization": "Bearer nope"}).status_code == 401
    token = sign_up(derp, "tamper@example.com")["tokens"]["access_token"]
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    res = client.get("/orders", headers={"Authorization": f"Bearer {head}.{forged}.{sig}"})
    assert res.status_code == 401


def test_valid_token_is_200(derp, client):
    body = sign_up(derp, "alice@example.com")
    token = body["tokens"]["access_token"]
    res = client.get("/orders", headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 200
    assert res.json() == {"user_id": body["user"]["id"], "email": "alice@example.com", "orders": []}


def test_token_of_another_derp_is_401(client):
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        other = start_derp(Path(tmp), port)
        try:
            token = sign_up(f"http://127.0.0.1:{port}", "bob@example.com")["tokens"]["access_token"]
        finally:
            other.terminate()
            other.wait(timeout=10)
    assert client.get("/orders", headers={"Authorization": f"Bearer {token}"}).status_code == 401


HS256_SECRET = "an-hs256-secret-of-at-least-32-bytes!"


@pytest.fixture
def hs256(derp):
    """A second derp configured like the original library (HS256 with a
    secret), and the example reloaded with DERP_JWT_SECRET. Afterwards the
    example is reloaded as it was, for the other tests."""
    import importlib

    import app as example

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = start_derp(
            Path(tmp), port, f'[auth.native.jwt]\nsecret = "{HS256_SECRET}"\nalgorithm = "HS256"\n'
        )
        url = f"http://127.0.0.1:{port}"
        try:
            os.environ["DERP_URL"] = url
            os.environ["DERP_JWT_SECRET"] = HS256_SECRET
            importlib.reload(example)
            yield url, TestClient(example.app)
        finally:
            os.environ["DERP_URL"] = derp
            del os.environ["DERP_JWT_SECRET"]
            importlib.reload(example)
            proc.terminate()
            proc.wait(timeout=10)


def test_hs256_secret_configuration(derp, hs256):
    url, hs_client = hs256
    body = sign_up(url, "carol@example.com")
    token = body["tokens"]["access_token"]
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"] == "HS256"
    res = hs_client.get("/orders", headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 200, res.text
    assert res.json()["user_id"] == body["user"]["id"]
    # Another derp's EdDSA token, and a token signed with another secret: 401.
    eddsa = sign_up(derp, "dave@example.com")["tokens"]["access_token"]
    assert hs_client.get("/orders", headers={"Authorization": f"Bearer {eddsa}"}).status_code == 401
    head, payload, _ = token.split(".")
    import hashlib
    import hmac

    sig = hmac.new(b"another-secret-of-at-least-32-bytes!!", f"{head}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{head}.{payload}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
    assert hs_client.get("/orders", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
