"""derp's mail against an SMTP server nobody here wrote: aiosmtpd's Maildir
handler. Sign-up mail and recovery mail arrive, and their links work."""

import email
import email.policy
import mailbox
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DERP_BIN = os.environ.get("DERP_BIN", str(ROOT / "target" / "debug" / "derp"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


@pytest.fixture(scope="module")
def env():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        smtp_port, derp_port = free_port(), free_port()
        maildir = tmp / "Maildir"
        smtpd = subprocess.Popen(
            [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}",
             "-c", "aiosmtpd.handlers.Mailbox", str(maildir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        config = tmp / "derp.toml"
        config.write_text(f"""
[server]
bind = "127.0.0.1:{derp_port}"
data_dir = "{tmp / 'data'}"
[auth.native]
enable_magic_link = true
[email]
site_name = "Peer Test"
from_email = "Peer Test <no-reply@peer.test>"
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
tls = "none"
""")
        derp = subprocess.Popen([DERP_BIN, "serve", "--config", str(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            wait_port(smtp_port, deadline)
            wait_port(derp_port, deadline)
            yield f"http://127.0.0.1:{derp_port}", maildir
        finally:
            for p in (derp, smtpd):
                p.terminate()
                p.wait(timeout=10)


def wait_for_mail(maildir: Path, to: str, subject_part: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if maildir.exists():
            for _, raw in mailbox.Maildir(str(maildir), create=False).items():
                msg = email.message_from_bytes(raw.as_bytes(), policy=email.policy.default)
                if to in str(msg["To"]) and subject_part in str(msg["Subject"]):
                    return msg
        time.sleep(0.1)
    raise AssertionError(f"no mail to {to} with {subject_part!r}")


def token_of(msg) -> str:
    text = msg.get_body(preferencelist=("plain",)).get_content()
    match = re.search(r"token=([A-Za-z0-9_-]{43})", text)
    assert match, text
    return match.group(1)


def test_confirmation_mail_arrives_and_confirms(env):
    base, maildir = env
    res = httpx.post(f"{base}/api/v1/auth/sign-up", json={"email": "ann@example.com", "password": "correct horse battery"})
    assert res.status_code == 201
    msg = wait_for_mail(maildir, "ann@example.com", "Confirm your email")
    assert "Peer Test" in str(msg["Subject"])
    assert msg.get_body(preferencelist=("html",)) is not None, "an HTML part too"
    res = httpx.post(f"{base}/api/v1/auth/confirm", json={"token": token_of(msg)})
    assert res.status_code == 200, res.text
    assert res.json()["user"]["email_confirmed_at"]


def test_recovery_mail_arrives_and_resets(env):
    base, maildir = env
    httpx.post(f"{base}/api/v1/auth/sign-up", json={"email": "ben@example.com", "password": "correct horse battery"})
    confirm = wait_for_mail(maildir, "ben@example.com", "Confirm your email")
    httpx.post(f"{base}/api/v1/auth/confirm", json={"token": token_of(confirm)})
    res = httpx.post(f"{base}/api/v1/auth/password/recover", json={"email": "ben@example.com"})
    assert res.status_code == 202
    msg = wait_for_mail(maildir, "ben@example.com", "Reset your password")
    res = httpx.post(f"{base}/api/v1/auth/password/reset", json={"token": token_of(msg), "password": "another fine password"})
    assert res.status_code == 200, res.text
    wait_for_mail(maildir, "ben@example.com", "password was changed")
    res = httpx.post(f"{base}/api/v1/auth/sign-in", json={"email": "ben@example.com", "password": "another fine password"})
    assert res.status_code == 200


def test_magic_link_for_a_new_address(env):
    base, maildir = env
    res = httpx.post(f"{base}/api/v1/auth/magic-link", json={"email": "cy@example.com"})
    assert res.status_code == 202
    msg = wait_for_mail(maildir, "cy@example.com", "sign-in link")
    res = httpx.post(f"{base}/api/v1/auth/magic-link/verify", json={"token": token_of(msg)})
    assert res.status_code == 200
    assert res.json()["user"]["email"] == "cy@example.com"
