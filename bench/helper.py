#!/usr/bin/env python3
"""Helpers for bench/run.sh: readiness checks, seeding accounts and tokens over
HTTP (127.0.0.1 only), parsing wrk's output and printing the table.

    helper.py wait   URL TIMEOUT_S          exit 0 once URL answers 200
    helper.py status URL                    print URL's HTTP status (0: no answer)
    helper.py seed-users   TARGET BASE PREFIX N
    helper.py tokens       TARGET BASE PREFIX N_USERS COUNT KIND OUT
    helper.py report WORKDIR                print the table
    helper.py median-rps WORKDIR TARGET TEST  print the median req/s of TEST's runs so far
    helper.py next-cursor URL TOKEN         print the next page's cursor (scale.sh)
    helper.py scale-report WORKDIR          print scale.sh's table

TARGET is `derp` or `peer`; KIND is `access` or `refresh` (the peer has only
its session token, returned for either kind). Accounts are
PREFIX-<i>@bench.example.com with the password below.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PASSWORD = "bench-password-123"
TIMEOUT = 30  # seconds, per HTTP call


def _check_local(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"refusing to send traffic to {host}: the benchmark is loopback only")


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None):
    _check_local(url)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# --- commands -----------------------------------------------------------------


def cmd_wait(url: str, timeout_s: str) -> int:
    deadline = time.monotonic() + float(timeout_s)
    while time.monotonic() < deadline:
        try:
            if http("GET", url)[0] == 200:
                return 0
        except OSError:
            pass
        time.sleep(0.2)
    print(f"{url} not ready after {timeout_s}s", file=sys.stderr)
    return 1


def cmd_status(url: str) -> int:
    try:
        print(http("GET", url)[0])
    except OSError:
        print(0)
    return 0


def _paths(target: str) -> tuple[str, str]:
    if target == "peer":
        return "/api/auth/sign-up/email", "/api/auth/sign-in/email"
    return "/api/v1/auth/sign-up", "/api/v1/auth/sign-in"


def cmd_seed_users(target: str, base: str, prefix: str, n: str) -> int:
    up, _ = _paths(target)

    def one(i: int) -> int:
        body = {"email": f"{prefix}-{i}@bench.example.com", "password": PASSWORD}
        if target == "peer":
            body["name"] = "Bench User"
        return http("POST", base + up, body)[0]

    with ThreadPoolExecutor(4) as ex:
        codes = list(ex.map(one, range(int(n))))
    bad = [c for c in codes if c not in (200, 201)]
    if bad:
        print(f"seed-users: {len(bad)}/{len(codes)} sign-ups failed: {sorted(set(bad))}", file=sys.stderr)
        return 1
    return 0


def cmd_tokens(target: str, base: str, prefix: str, n_users: str, count: str, kind: str, out: str) -> int:
    _, inn = _paths(target)

    def one(i: int) -> str:
        body = {"email": f"{prefix}-{i % int(n_users)}@bench.example.com", "password": PASSWORD}
        code, raw = http("POST", base + inn, body)
        if code != 200:
            raise RuntimeError(f"sign-in answered {code}: {raw[:200]!r}")
        doc = json.loads(raw)
        if target == "peer":
            return doc["token"]
        return doc["tokens"][f"{kind}_token"]

    with ThreadPoolExecutor(4) as ex:
        tokens = list(ex.map(one, range(int(count))))
    Path(out).write_text("\n".join(tokens) + "\n")
    return 0


# --- wrk output ---------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def parse_wrk(path: Path) -> dict | None:
    """req/s, p50/p99 (ms), request count, non-2xx/3xx and socket errors."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    fixed = re.search(r"^requests=\S+ rate=.*$", text, re.M)
    if fixed:  # examples/fixed_rate.rs: key=value pairs on one line
        kv = dict(x.split("=", 1) for x in fixed.group(0).split())
        return {
            "rps": float(kv["rate"]),
            "p50": float(kv["p50_ms"]),
            "p99": float(kv["p99_ms"]),
            "non2xx": int(kv["non2xx"]),
            "sock": int(kv["errors"]),
            "requests": int(kv["requests"]),
        }
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not m:
        return None
    r = {"rps": float(m.group(1)), "non2xx": 0, "sock": 0, "requests": 0}
    for q in ("50", "99"):
        mq = re.search(rf"^\s+{q}%\s+(\S+)", text, re.M)
        r[f"p{q}"] = _ms(mq.group(1)) if mq else float("nan")
    mn = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if mn:
        r["non2xx"] = int(mn.group(1))
    ms = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if ms:
        r["sock"] = sum(int(x) for x in ms.groups())
    mr = re.search(r"(\d+) requests in", text)
    if mr:
        r["requests"] = int(mr.group(1))
    if r["requests"] == 0:  # nothing completed: no latency to speak of
        r["p50"] = r["p99"] = float("nan")
    return r


class Runs:
    """The runs of one test against one target."""

    def __init__(self, work: Path, target: str, test: str):
        self.runs = [
            p for p in (parse_wrk(f) for f in sorted((work / "wrk").glob(f"{target}.{test}.*.txt"))) if p
        ]

    def __bool__(self) -> bool:
        return bool(self.runs)

    def med(self, key: str) -> float:
        vals = [r[key] for r in self.runs if r[key] == r[key]]
        return statistics.median(vals) if vals else float("nan")

    def errors(self) -> tuple[int, int, int]:
        return (
            sum(r["non2xx"] for r in self.runs),
            sum(r["sock"] for r in self.runs),
            sum(r["requests"] for r in self.runs),
        )


def _env(path: Path) -> dict[str, str]:
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
    return out


def _num(x: float, unit: str = "", digits: int | None = None) -> str:
    if x != x:  # NaN
        return "—"
    if digits is None:
        digits = 0 if abs(x) >= 100 else 1 if abs(x) >= 10 else 2
    return f"{x:,.{digits}f}{unit}"


def _ratio(a: float, b: float, pct: bool = False) -> str:
    if a != a or b != b or b == 0:
        return ""
    return f"{100 * a / b:.0f}%" if pct else f"{a / b:.2f}x"


def _own_cpu_s(path: Path) -> float:
    """Seconds of CPU in bash's `times` output (self and waited children)."""
    total = 0.0
    for m in re.finditer(r"(\d+)m([\d.]+)s", path.read_text()):
        total += int(m.group(1)) * 60 + float(m.group(2))
    return total


def foreign_cpu(work: Path, cores: float) -> tuple[float, float] | None:
    """(core-seconds, share of the machine) that processes other than this
    benchmark used between the `start` and `end` snapshots."""
    try:
        ticks = [float((work / f"cpu.{t}.ticks").read_text()) for t in ("start", "end")]
        wall = [float((work / f"cpu.{t}.wall").read_text()) for t in ("start", "end")]
        own = [_own_cpu_s(work / f"cpu.{t}.own") for t in ("start", "end")]
    except (OSError, ValueError):
        return None
    busy = (ticks[1] - ticks[0]) / 100.0  # USER_HZ
    other = max(0.0, busy - (own[1] - own[0]))
    span = (wall[1] - wall[0]) * cores
    return other, (other / span if span > 0 else float("nan"))


def cmd_report(workdir: str) -> int:
    work = Path(workdir)
    env = _env(work / "results.env")
    cores = float(env.get("cores", "1"))
    peer_ok = env.get("peer.status") == "ok"
    targets = ["derp"] + (["peer"] if peer_ok else [])

    def r(target: str, test: str) -> Runs:
        return Runs(work, target, test)

    def f(key: str) -> float:
        try:
            return float(env[key])
        except (KeyError, ValueError):
            return float("nan")

    rows: list[tuple[str, str, str, str]] = []  # label, derp, peer, derp/peer

    def row(label: str, vals: dict[str, float] | dict[str, str], unit: str = "", ratio: bool = True,
            digits: int | None = None, na: dict[str, str] | None = None) -> None:
        cells = {}
        for t in ("derp", "peer"):
            if t == "peer" and not peer_ok:
                cells[t] = ""
            elif na and t in na:
                cells[t] = na[t]
            else:
                v = vals.get(t, float("nan"))
                cells[t] = v if isinstance(v, str) else _num(v, unit, digits)
        rat = ""
        if ratio and peer_ok and not (na and ("derp" in na or "peer" in na)):
            a, b = vals.get("derp"), vals.get("peer")
            if isinstance(a, float) and isinstance(b, float):
                rat = _ratio(a, b)
        rows.append((label, cells["derp"], cells["peer"], rat))

    def section(title: str) -> None:
        rows.append((title, "", "", "\x00"))

    hash_ms = {"derp": f("derp.hash_ms"), "peer": f("peer.hash_ms")}
    hash_par = {"derp": f("derp.hash_par"), "peer": f("peer.hash_par")}
    bound = {t: cores * 1000 / hash_ms[t] if hash_ms[t] == hash_ms[t] else float("nan") for t in hash_ms}
    ch, cl = env.get("c_hash", "?"), env.get("c_light", "?")

    section("password hashing (outside the server)")
    row("hash algorithm", {"derp": "argon2id", "peer": "scrypt"}, ratio=False)
    row("hash time, 1 core (ms, mean)", hash_ms, digits=1)
    row(f"hash bound: {cores:.0f} cores / hash time (/s)", bound, digits=1)
    row(f"hashes/s measured, {cores:.0f} at once", hash_par, digits=1)

    section("write paths (hash-bound)")
    su = {t: r(t, "signup").med("rps") for t in targets}
    si = {t: r(t, "signin").med("rps") for t in targets}
    row(f"sign-ups/s (c={ch})", su, digits=1)
    row(f"sign-ins/s (c={ch})", si, digits=1)
    row("  sign-ins / hash bound", {t: _ratio(si.get(t, float('nan')), bound[t], pct=True) or "—" for t in targets},
        ratio=False)
    row("  sign-ins / measured hashes/s", {t: _ratio(si.get(t, float('nan')), hash_par[t], pct=True) or "—"
                                          for t in targets}, ratio=False)
    row("  sign-in p99 (ms)", {t: r(t, "signin").med("p99") for t in targets}, digits=0)
    rf = r("derp", "refresh").med("rps")
    row(f"refreshes/s (c={cl})", {"derp": rf}, digits=0,
        na={"peer": "n/a (no refresh tokens)"})

    section("read paths")
    se = {t: r(t, "session").med("rps") for t in targets}
    hz = {t: r(t, "healthz").med("rps") for t in targets}
    row(f"/session req/s (c={cl})", se, digits=0)
    row("  /session p50 (ms)", {t: r(t, "session").med("p50") for t in targets})
    row("  /session p99 (ms)", {t: r(t, "session").med("p99") for t in targets})
    row(f"/healthz req/s (c={cl}): HTTP ceiling", hz, digits=0)
    row("  /session / /healthz", {t: _ratio(se.get(t, float('nan')), hz.get(t, float('nan')), pct=True) or "—"
                                  for t in targets}, ratio=False)
    lg = r("derp", "login")
    row("/login renders/s",
        {"derp": lg.med("rps") if lg else env.get("derp.login", "n/a (not built yet)")},
        digits=0, na={"peer": "n/a (no hosted pages)"})

    section(f"mixed: /session (c={cl}) during a sign-in flood (c={ch})")
    row("  /session p99 under flood (ms)", {t: r(t, "mixed_session").med("p99") for t in targets})
    row("  /session req/s under flood", {t: r(t, "mixed_session").med("rps") for t in targets}, digits=0)
    row("  sign-ins/s during flood", {t: r(t, "mixed_signin").med("rps") for t in targets}, digits=1)

    section("fair share: /session at a fixed rate (half its solo req/s) with a sign-in flood")
    fs = {t: r(t, "fair_session") for t in targets}
    row("  /session fixed rate asked (req/s)", {t: f(f"{t}.fair_rate") for t in targets}, digits=0)
    row("  /session req/s served", {t: fs[t].med("rps") for t in targets}, digits=0)
    row("  /session p99, from the intended send time (ms)", {t: fs[t].med("p99") for t in targets})
    fsi = {t: r(t, "fair_signin").med("rps") for t in targets}
    row(f"  sign-ins/s at the same time (c={ch})", fsi, digits=1)
    row("  sign-ins / their solo rate", {t: _ratio(fsi.get(t, float('nan')), si.get(t, float('nan')), pct=True)
                                         or "—" for t in targets}, ratio=False)

    section("memory (server process)")
    row("peak RSS sampled under load (MiB)", {t: f(f"{t}.rss_peak_kb") / 1024 for t in targets}, digits=1)
    row("VmHWM at end (MiB)", {t: f(f"{t}.vmhwm_kb") / 1024 for t in targets}, digits=1)

    section("errors over all runs (non-2xx / socket errors / requests)")
    for test in ("signup", "signin", "refresh", "session", "healthz", "login", "mixed_signin", "mixed_session",
                 "fair_signin", "fair_session"):
        vals = {}
        for t in targets:
            runs = r(t, test)
            if runs:
                e = runs.errors()
                vals[t] = f"{e[0]} / {e[1]} / {e[2]:,}"
        if vals:
            row(f"  {test}", {t: vals.get(t, "—") for t in targets}, ratio=False)

    # --- print ---
    w0 = max(len(x[0]) for x in rows if x[3] != "\x00")
    w1 = max(max(len(x[1]) for x in rows), len("derp"))
    w2 = max(max(len(x[2]) for x in rows), len("better-auth"))
    hdr_peer = "better-auth" if peer_ok else ""
    title = (f"derp benchmark: {env.get('cpu', '?')}, {cores:.0f} cores; wrk -t2, median of "
             f"{env.get('runs', '?')} runs x {env.get('duration', '?')}s; 127.0.0.1 only")
    print(title)
    print(f"derp {env.get('derp.version', '')} ({env.get('derp.commit', '?')}); "
          + (f"better-auth {env.get('peer.version', '?')} on node {env.get('node.version', '?')}, "
             f"better-sqlite3 {env.get('peer.sqlite_version', '?')}" if peer_ok
             else f"peer: unavailable ({env.get('peer.reason', 'unknown reason')})"))
    line = "-" * (w0 + w1 + w2 + 16)
    print(line)
    print(f"{'':<{w0}}  {'derp':>{w1}}  {hdr_peer:>{w2}}  {'derp/peer' if peer_ok else '':>9}")
    for label, a, b, c in rows:
        if c == "\x00":
            print(line if label else "")
            print(label)
            continue
        print(f"{label:<{w0}}  {a:>{w1}}  {b:>{w2}}  {c:>9}")
    print(line)
    notes = [
        "refresh: every request spends a distinct, never-used refresh token: "
        f"{env.get('refresh_seeds', '?')} fresh ones per run, and each 200 answer's rotated "
        "token is queued for a later request (no replay, default reuse grace).",
        ("hashing differs: derp argon2id (m=19 MiB, t=2, p=1), Better Auth scrypt (N=16384, r=16, p=1, "
         "dkLen=64); " if peer_ok else "derp hashes with argon2id (m=19 MiB, t=2, p=1); ")
        + "the hash bound is cores / one-core hash time, the most sign-ins a second the CPU allows.",
        "load generator (wrk, 2 threads) shares the same 2 cores with the server under test"
        + ("; Better Auth runs in one Node process (its hashing in libuv's thread pool)." if peer_ok else "."),
    ]
    if peer_ok:
        notes.append("Better Auth's /healthz is a bare Node handler in the peer script; its /session is "
                     "GET /api/auth/get-session with the bearer plugin.")
    fc = foreign_cpu(work, cores)
    if fc:
        other, share = fc
        warn = " (figures are low: rerun on a quiet machine)" if share > 0.05 else ""
        notes.append(f"other processes used {other:.0f} core-seconds during the load phase, {100 * share:.0f}% "
                     f"of the machine; load average {env.get('load_start', '?')} at start, "
                     f"{env.get('load_end', '?')} at end{warn}.")
    for n in notes:
        print("note: " + n)
    print(f"logs and raw wrk output: {work}")
    return 0


# --- scale.sh -----------------------------------------------------------------


def cmd_median_rps(workdir: str, target: str, test: str) -> int:
    """Prints the median req/s of one load's runs so far (nan if none)."""
    print(Runs(Path(workdir), target, test).med("rps"))
    return 0


def cmd_next_cursor(url: str, token: str) -> int:
    """The cursor of the page after URL's: `next_cursor` in the body (admin
    users) or the X-Next-Cursor header (org lists)."""
    _check_local(url)
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
        header = r.headers.get("X-Next-Cursor")
        doc = json.loads(r.read())
    cursor = doc.get("next_cursor") if isinstance(doc, dict) else header
    if not cursor:
        print(f"next-cursor: {url} has no next page", file=sys.stderr)
        return 1
    print(urllib.parse.quote(cursor, safe=""))
    return 0


SCALE_TESTS = [
    ("signin", "sign-in (POST /auth/sign-in)"),
    ("search_common", "admin search, q matches every user"),
    ("search_one", "admin search, q matches one user"),
    ("search_page2", "admin search, page 2 (limit=16, cursor)"),
    ("search_short", "admin search, 2-char q, no match"),
    ("members", "org members, page 1"),
    ("members_page2", "org members, page 2 (limit=16, cursor)"),
]


def cmd_scale_report(workdir: str) -> int:
    work = Path(workdir)
    env = _env(work / "results.env")
    points = env.get("points", "").split()
    heads = [f"{int(p):,} users" for p in points]
    print(f"derp at scale: {env.get('cpu', '?')}, {env.get('cores', '?')} cores; "
          f"{env.get('runs', '?')} run(s) of {env.get('duration', '?')} s per figure (median); "
          f"commit {env.get('commit', '?')}")
    print()
    cols = " | ".join(f"{h}: req/s, p50, p99" for h in heads)
    print(f"| load | c | {cols} | req/s {points[-1] if points else ''} / {points[0] if points else ''} |")
    print("| --- | --- |" + " --- |" * len(points) + " --- |")
    errors = []
    for test, label in SCALE_TESTS:
        cells, rps = [], []
        for p in points:
            r = Runs(work, p, test)
            if not r:
                cells.append("n/a")
                rps.append(float("nan"))
                continue
            cells.append(f"{r.med('rps'):,.0f}, {r.med('p50'):.2f} ms, {r.med('p99'):.2f} ms")
            rps.append(r.med("rps"))
            non2xx, sock, n = r.errors()
            if non2xx or sock:
                errors.append(f"{test} at {p} users: {non2xx} non-2xx, {sock} socket errors in {n} requests")
        conns = env.get(f"c.{test}", "?")
        ratio = f"{rps[-1] / rps[0]:.2f}" if len(rps) > 1 and rps[0] == rps[0] and rps[0] else "n/a"
        print(f"| {label} | {conns} | " + " | ".join(cells) + f" | {ratio} |")
    print()
    for e in errors:
        print("note: errors: " + e)
    fc = foreign_cpu(work, float(env.get("cores", "1")))
    if fc:
        other, share = fc
        warn = " (figures are low: rerun on a quiet machine)" if share > 0.05 else ""
        print(f"note: other processes used {other:.0f} core-seconds during the loads, {100 * share:.0f}% "
              f"of the machine; load average {env.get('load_start', '?')} at start, "
              f"{env.get('load_end', '?')} at end{warn}.")
    print(f"logs, raw wrk output and query plans: {work}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    table = {
        "wait": cmd_wait,
        "status": cmd_status,
        "seed-users": cmd_seed_users,
        "tokens": cmd_tokens,
        "report": cmd_report,
        "median-rps": cmd_median_rps,
        "next-cursor": cmd_next_cursor,
        "scale-report": cmd_scale_report,
    }
    if cmd not in table:
        print(__doc__, file=sys.stderr)
        return 2
    return table[cmd](*args)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
