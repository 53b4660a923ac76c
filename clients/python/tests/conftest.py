"""A live derp for the tests: the real binary ($DERP_BIN, else the repo's
target/debug/derp) on a free port, with a temp data dir and a derp.toml
written here. The dev mailer writes mails to the server log, where
`DerpServer.mail_token` finds their links."""

from __future__ import annotations

import html
import os
import re
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

from derp_client import DerpClient

ROOT = Path(__file__).resolve().parents[3]
DERP_BIN = os.environ.get("DERP_BIN", str(ROOT / "target" / "debug" / "derp"))
HS256_SECRET = "test-secret-that-is-at-least-32-bytes-long!"
PASSWORD = "correct horse battery"
SERVICE_KEY = "test-service-key-with-at-least-32-bytes-x"

BASE_TOML = """
[server]
bind = "127.0.0.1:{port}"
data_dir = "{data}"
[auth.native]
enable_confirmation = {confirmation}
enable_magic_link = true
refresh_reuse_grace_seconds = 0
[auth.native.jwt]
{jwt}
[hosted]
allowed_redirect_urls = ["http://app.test/callback"]
[rate_limit]
sign_in_per_ip = 0
sign_in_per_account = 0
sign_up_per_ip = 0
email_per_address = 0
lockout_after = 0
[auth.native.google_oauth]
client_id = "test-client"
client_secret = "test-client-secret"
redirect_uri = "http://127.0.0.1:{port}/api/v1/auth/oauth/google/callback"
authorization_url = "http://127.0.0.1:9/authorize"
token_url = "http://127.0.0.1:9/token"
userinfo_url = "http://127.0.0.1:9/userinfo"
jwks_url = "http://127.0.0.1:9/jwks"
[admin]
service_keys = ["{service_key}"]
[orgs]
roles = ["billing"]
{extra}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DerpServer:
    def __init__(
        self,
        tmp: Path,
        *,
        jwt: str = 'algorithm = "EdDSA"',
        confirmation: bool = False,
        extra: str = "",
        toml: str | None = None,
    ) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = tmp / "derp.toml"
        self.config.write_text(
            toml.format(port=self.port, data=tmp / "data")
            if toml is not None
            else BASE_TOML.format(
                port=self.port,
                data=tmp / "data",
                confirmation="true" if confirmation else "false",
                jwt=jwt,
                extra=extra,
                service_key=SERVICE_KEY,
            )
        )
        self.log = tmp / "derp.log"
        self.proc: subprocess.Popen | None = None
        # Tokens already handed to a test: mail is sent after derp answers,
        # so the last mail in the log may still be the one before.
        self.seen_tokens: set[str] = set()

    def start(self) -> "DerpServer":
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [DERP_BIN, "--config", str(self.config), "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1", "RUST_LOG": "info"},
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"derp exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("derp did not start within 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [DERP_BIN, "--config", str(self.config), *args], capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def mail_token(self, email: str, timeout: float = 10) -> str:
        """The token of the last link mailed to `email` (dev mailer log),
        waiting for one this server has not handed out before."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = re.sub(r"\x1b\[[0-9;]*m", "", self.log.read_text(errors="replace"))
            # "… message follows\n<text>\n-- <site> to=<email> subject=…"
            end = text.rfind(f"to={email} ")
            start = text.rfind("message follows", 0, end)
            m = re.search(r"token=([A-Za-z0-9_-]{43})", text[start:end]) if end >= 0 else None
            if m and m.group(1) not in self.seen_tokens:
                self.seen_tokens.add(m.group(1))
                return m.group(1)
            time.sleep(0.05)
        raise AssertionError(f"no new mail with a token to {email} in the log")


@pytest.fixture(scope="session")
def derp_server():
    """derp with EdDSA keys (the default), confirmation off, magic links on."""
    with tempfile.TemporaryDirectory() as tmp:
        server = DerpServer(Path(tmp)).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def derp_hs256():
    """derp configured like the original library: HS256 with a secret, confirmation on."""
    with tempfile.TemporaryDirectory() as tmp:
        server = DerpServer(
            Path(tmp),
            jwt=f'secret = "{HS256_SECRET}"\nalgorithm = "HS256"',
            confirmation=True,
        ).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
async def derp(derp_server):
    async with DerpClient(derp_server.url) as client:
        yield client


def new_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture
def email():
    return new_email()


def browser_login(url: str, email: str, password: str) -> httpx.URL:
    """Signs in on derp's hosted /login page as a browser would (cookies,
    CSRF token, the hidden return fields) and returns where derp redirects."""
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        form = {
            m.group(1): html.unescape(m.group(2))
            for m in re.finditer(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', page.text)
        }
        form.update(email=email, password=password)
        base = url.split("/login")[0]
        res = browser.post(f"{base}/login", data=form)
        assert res.status_code in (302, 303), res.text
        return httpx.URL(res.headers["location"])
