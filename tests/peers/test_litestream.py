"""derp's database replicated by Litestream (its own 0.3.13 binary, from npm's
@flydotio/litestream-linux-x64), as `install.sh --with-litestream` sets it
up: sign-ups run, the machine "dies" (derp and Litestream killed with
SIGKILL at once), the replica is restored into a fresh data directory with
`litestream restore`, and derp started there signs in every user whose
sign-up was acknowledged more than the documented lag before the kill."""

import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
DERP_BIN = os.environ.get("DERP_BIN", str(ROOT / "target" / "debug" / "derp"))
LITESTREAM_BIN = os.environ.get(
    "LITESTREAM_BIN",
    str(ROOT / "tests/litestream/node_modules/@flydotio/litestream-linux-x64/litestream"))
PASSWORD = "correct horse battery staple"
# docs/operations.md: Litestream ships the WAL every second (sync-interval);
# what was acknowledged more than this long before a crash is in the replica.
DOCUMENTED_LAG_S = 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(tmp: Path, name: str, port: int) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(f"""
[server]
bind = "127.0.0.1:{port}"
data_dir = "{tmp / name}"
[auth.native]
enable_confirmation = false
[rate_limit]
sign_in_per_ip = 0
sign_in_per_account = 0
sign_up_per_ip = 0
""")
    return path


def start_derp(conf: Path) -> subprocess.Popen:
    return subprocess.Popen([DERP_BIN, "serve", "--config", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(base: str, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{base} did not become ready")


def test_restore_from_the_replica_after_a_crash_keeps_every_acknowledged_sign_up():
    assert Path(LITESTREAM_BIN).is_file(), f"no litestream at {LITESTREAM_BIN} (./test.sh installs it)"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        derp = start_derp(config(tmp, "data", port))
        ls_conf = tmp / "litestream.yml"
        ls_conf.write_text(f"""dbs:
  - path: {tmp / 'data' / 'derp.db'}
    replicas:
      - type: file
        path: {tmp / 'replica'}
        sync-interval: 1s
""")
        litestream = None
        try:
            wait_ready(base)
            litestream = subprocess.Popen(
                [LITESTREAM_BIN, "replicate", "-config", str(ls_conf)],
                stdout=subprocess.DEVNULL, stderr=open(tmp / "litestream.log", "w"))
            acked = []  # (email, monotonic time of the 201)
            stop = threading.Event()

            def sign_ups():
                with httpx.Client(base_url=base, timeout=10) as c:
                    i = 0
                    while not stop.is_set():
                        email = f"replica{i:04}@example.com"
                        try:
                            res = c.post("/api/v1/auth/sign-up",
                                         json={"email": email, "password": PASSWORD})
                        except httpx.HTTPError:
                            return  # the server died
                        if res.status_code == 201:
                            acked.append((email, time.monotonic()))
                        i += 1

            worker = threading.Thread(target=sign_ups)
            worker.start()
            time.sleep(6)
            # The machine dies: both processes at once, nothing flushed.
            killed_at = time.monotonic()
            derp.send_signal(signal.SIGKILL)
            litestream.send_signal(signal.SIGKILL)
            stop.set()
            worker.join(timeout=15)
            derp.wait(timeout=10)
            litestream.wait(timeout=10)
        finally:
            derp.kill()
            if litestream:
                litestream.kill()

        # The restore drill of docs/operations.md.
        restored = tmp / "restored"
        restored.mkdir(mode=0o700)
        out = subprocess.run(
            [LITESTREAM_BIN, "restore", "-config", str(ls_conf), "-o",
             str(restored / "derp.db"), str(tmp / "data" / "derp.db")],
            capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        (restored / "secrets.key").write_bytes((tmp / "data" / "secrets.key").read_bytes())
        os.chmod(restored / "secrets.key", 0o600)

        port2 = free_port()
        base2 = f"http://127.0.0.1:{port2}"
        derp2 = start_derp(config(tmp, "restored", port2))
        try:
            wait_ready(base2)
            must = [e for e, at in acked if killed_at - at > DOCUMENTED_LAG_S]
            assert len(must) >= 5, f"only {len(must)} sign-ups before the lag window"
            present, lost_ages = 0, []
            with httpx.Client(base_url=base2, timeout=10) as c:
                for email, at in acked:
                    res = c.post("/api/v1/auth/sign-in", json={"email": email, "password": PASSWORD})
                    if res.status_code == 200:
                        present += 1
                    else:
                        lost_ages.append(killed_at - at)
                        assert email not in must, \
                            f"{email}, acknowledged {killed_at - at:.2f} s before the crash, is lost"
            print(f"\nlitestream: {len(acked)} sign-ups acknowledged, {present} restored; "
                  f"{len(must)} were older than {DOCUMENTED_LAG_S} s and all came back; "
                  f"lost: {len(lost_ages)}, acknowledged at most "
                  f"{max(lost_ages, default=0.0):.2f} s before the crash")
        finally:
            derp2.terminate()
            derp2.wait(timeout=10)
