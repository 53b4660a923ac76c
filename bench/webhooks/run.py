#!/usr/bin/env python3
"""Webhook delivery rate: `bench/webhooks/run.py [--json PATH] [DERP_BIN]`.

Starts a Node receiver and a release derp on loopback with ENDPOINTS
endpoints (all pointing at the receiver), creates EVENTS users through the
admin API with 8 client threads (each a `user.created` event), and waits for
every delivery. Prints deliveries per second (from the first arrival to the
last), the latency from the event's timestamp to its arrival (whole seconds
in the timestamp, so about +-1 s), and derp's peak RSS. Knobs (environment):
BENCH_WEBHOOK_EVENTS (2000), BENCH_WEBHOOK_ENDPOINTS ("1 4"). `--json PATH`
also writes the rows as JSON (bench/run.sh folds them into its table).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
KEY = "bench-service-key-0123456789-0123456789"
SECRET = "whsec_YmVuY2gtd2ViaG9vay1zZWNyZXQtb2YtMzItYnl0ZXM="


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_ready(url, limit=60):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if get(url, 1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"not ready: {url}")


def create_user(base, email):
    req = urllib.request.Request(
        f"{base}/api/v1/admin/users", method="POST",
        data=json.dumps({"email": email}).encode(),
        headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 201


def peak_rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def one_run(derp_bin, events, endpoints, work):
    rport = free_port()
    receiver = subprocess.Popen(["node", str(HERE / "receiver.mjs"), str(rport)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = work / f"data-{endpoints}"
    hooks = "".join(
        f'\n[webhooks.e{i}]\nurl = "http://127.0.0.1:{rport}/hooks"\nsecret = "{SECRET}"\n'
        for i in range(endpoints))
    config = work / f"derp-{endpoints}.toml"
    config.write_text(f"""
[server]
bind = "127.0.0.1:{port}"
data_dir = "{data}"
[auth.native]
enable_confirmation = false
[admin]
service_keys = ["{KEY}"]
[rate_limit]
sign_in_per_ip = 0
sign_up_per_ip = 0
{hooks}""")
    derp = subprocess.Popen([derp_bin, "serve", "--config", str(config)],
                            env=dict(os.environ, RUST_LOG="warn"),
                            stdout=subprocess.DEVNULL, stderr=open(work / "derp.log", "a"))
    try:
        wait_ready(f"{base}/readyz")
        wait_ready(f"http://127.0.0.1:{rport}/stats")
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: create_user(base, f"w{endpoints}-{i}@bench.example.com"),
                          range(events)))
        made = time.monotonic() - started
        want = events * endpoints
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            stats = json.loads(get(f"http://127.0.0.1:{rport}/stats")[1])
            if stats["count"] >= want:
                break
            time.sleep(0.1)
        stats = json.loads(get(f"http://127.0.0.1:{rport}/stats")[1])
        rss = peak_rss_kb(derp.pid)
    finally:
        derp.terminate()
        receiver.terminate()
        derp.wait(timeout=15)
        receiver.wait(timeout=15)
    span = max(stats["last_ms"] - stats["first_ms"], 1) / 1000
    lat = sorted(stats["latencies"])
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0
    return {
        "endpoints": endpoints, "events": events, "delivered": stats["count"],
        "made_per_s": events / made, "delivered_per_s": stats["count"] / span,
        "p50_ms": pct(0.50), "p99_ms": pct(0.99), "rss_mib": rss / 1024,
    }


def main():
    args = sys.argv[1:]
    json_out = None
    if args[:1] == ["--json"] and len(args) > 1:
        json_out, args = Path(args[1]), args[2:]
    derp_bin = args[0] if args else str(ROOT / "target/release/derp")
    events = int(os.environ.get("BENCH_WEBHOOK_EVENTS", "2000"))
    counts = [int(n) for n in os.environ.get("BENCH_WEBHOOK_ENDPOINTS", "1 4").split()]
    work = Path(tempfile.mkdtemp(prefix="derp-bench-webhooks."))
    rows = [one_run(derp_bin, events, n, work) for n in counts]
    print("| endpoints | events | delivered | events made/s | deliveries/s | latency p50 | latency p99 | derp peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['endpoints']} | {r['events']} | {r['delivered']} | {r['made_per_s']:.0f} "
              f"| {r['delivered_per_s']:.0f} | {r['p50_ms']} ms | {r['p99_ms']} ms | {r['rss_mib']:.0f} MiB |")
    ok = all(r["delivered"] >= r["events"] * r["endpoints"] for r in rows)
    if json_out:
        json_out.write_text(json.dumps(rows) + "\n")
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"\nsome deliveries did not arrive; logs: {work}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
