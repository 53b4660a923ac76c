"""derp's webhooks against an implementation nobody here wrote: the
`standardwebhooks` package verifies every delivery. derp is killed with
SIGKILL while it delivers a burst of 500 events to a receiver that fails one
request in three; after a restart every event arrives, none is invented, the
order holds, and duplicates carry the same webhook-id."""

import base64
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from standardwebhooks.webhooks import Webhook

ROOT = Path(__file__).resolve().parents[2]
DERP_BIN = os.environ.get("DERP_BIN", str(ROOT / "target" / "debug" / "derp"))
SECRET = "whsec_" + base64.b64encode(b"a webhook secret of 32 bytes!!!!").decode()
SERVICE_KEY = "a-service-key-for-the-webhook-peer-test-0123456789"
EVENTS = 500


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """Verifies each request with standardwebhooks; fails every third one."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.log = []  # (webhook-id, email, answered status)
        self.bad_signatures = 0
        wh = Webhook(SECRET)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k: v for k, v in self.headers.items()}
                try:
                    payload = wh.verify(body, headers)
                except Exception:
                    with outer.lock:
                        outer.bad_signatures += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                with outer.lock:
                    outer.requests += 1
                    status = 500 if outer.requests % 3 == 0 else 204
                    outer.log.append((headers["webhook-id"], payload["data"]["email"], status))
                self.send_response(status)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self):
        """First accepted request of each webhook-id, in arrival order."""
        seen, out = set(), []
        with self.lock:
            for msg_id, email, status in self.log:
                if status == 204 and msg_id not in seen:
                    seen.add(msg_id)
                    out.append((msg_id, email))
        return out


def start_derp(config: Path) -> subprocess.Popen:
    env = dict(os.environ, DERP_WEBHOOK_SECRET=SECRET, DERP_WEBHOOK_RETRY_UNIT_MS="1")
    return subprocess.Popen([DERP_BIN, "serve", "--config", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(base: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("derp did not become ready")


def wait_until(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_kill_9_during_a_burst_loses_no_event_and_invents_none():
    rx = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        config = tmp / "derp.toml"
        config.write_text(f"""
[server]
bind = "127.0.0.1:{port}"
data_dir = "{tmp / 'data'}"
[auth.native]
enable_confirmation = false
[admin]
service_keys = ["{SERVICE_KEY}"]
[webhooks.mirror]
url = "{rx.url}"
secret = "$DERP_WEBHOOK_SECRET"
events = ["user.created"]
""")
        derp = start_derp(config)
        try:
            wait_ready(base, time.monotonic() + 30)
            emails = [f"burst{i:03}@example.com" for i in range(EVENTS)]
            started = time.monotonic()
            with httpx.Client(base_url=base, timeout=10,
                              headers={"authorization": f"Bearer {SERVICE_KEY}"}) as api:
                for email in emails:
                    res = api.post("/api/v1/admin/users", json={"email": email})
                    assert res.status_code == 201, res.text
            # Killed while the burst is being delivered.
            assert wait_until(lambda: len(rx.accepted()) >= EVENTS // 4, 60)
            delivered_before = len(rx.accepted())
            derp.send_signal(signal.SIGKILL)
            derp.wait(timeout=10)
            assert delivered_before < EVENTS, "the kill came before the end of the burst"

            derp = start_derp(config)
            wait_ready(base, time.monotonic() + 30)
            assert wait_until(lambda: len(rx.accepted()) >= EVENTS, 120), \
                f"{len(rx.accepted())} of {EVENTS} events arrived"
            elapsed = time.monotonic() - started
        finally:
            derp.kill()
            derp.wait(timeout=10)
        rx.server.shutdown()

    accepted = rx.accepted()
    assert rx.bad_signatures == 0
    # Every event arrived, in the order of the changes, none invented.
    assert [email for _, email in accepted] == emails
    # A duplicate (sent again after the kill) carries the same webhook-id.
    ids_by_email = {}
    for msg_id, email, _ in rx.log:
        ids_by_email.setdefault(email, set()).add(msg_id)
    assert set(ids_by_email) == set(emails), "no event for anything that did not happen"
    assert all(len(ids) == 1 for ids in ids_by_email.values())
    assert len({msg_id for msg_id, _ in accepted}) == EVENTS
    duplicates = sum(1 for _, _, s in rx.log if s == 204) - EVENTS
    print(f"\nwebhooks kill -9: {EVENTS} events, killed after {delivered_before} delivered; "
          f"{len(rx.log)} requests ({sum(1 for *_, s in rx.log if s == 500)} answered 500), "
          f"{duplicates} duplicate(s) after the restart; all delivered {elapsed:.1f} s after the "
          f"burst began")
