#!/usr/bin/env python3
"""Helpers for bench/run.sh: readiness checks, seeding accounts and tokens over
HTTP (127.0.0.1 only), parsing wrk's output and printing the table.

    helper.py wait   URL TIMEOUT_S          exit 0 once URL answers 200
    helper.py status URL ["Name: value"]    print URL's HTTP status (0: no answer); with a
                                            header, also the page's <html lang> (or -)
    helper.py seed-users   TARGET BASE PREFIX N
    helper.py tokens       TARGET BASE PREFIX N_USERS COUNT KIND OUT
    helper.py oidc-tokens  BASE PREFIX N_USERS COUNT OUT   refresh tokens of the bench OIDC client
    helper.py mfa-users    TARGET BASE PREFIX FIRST N STEPS OUT   accounts with a TOTP factor
    helper.py totp SECRET_BASE32 [UNIX]     print the TOTP code (RFC 6238, SHA-1, 6 digits, 30 s)
    helper.py oidc-client                   print derp.toml's table of the bench OIDC client
    helper.py oidc-basic                    print its Authorization: Basic header value
    helper.py mfa-users-count SIGNIN_RPS DURATION CONNS   accounts one mfa.lua run needs
    helper.py report WORKDIR                print the table
    helper.py pg-report WORKDIR             print bench/postgres.sh's table
    helper.py median-rps WORKDIR TARGET TEST  print the median req/s of TEST's runs so far
    helper.py next-cursor URL TOKEN         print the next page's cursor (scale.sh)
    helper.py scale-report WORKDIR          print scale.sh's table

TARGET is `derp` or `peer`; KIND is `access` or `refresh` (the peer has only
its session token, returned for either kind). Accounts are
PREFIX-<i>@bench.example.com with the password below.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import struct
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
# The OIDC client run.sh registers in derp.toml (client_secret_basic).
OIDC_CLIENT = "bench"
OIDC_SECRET = "bench-oidc-secret-0123456789abcdef"
OIDC_REDIRECT = "http://127.0.0.1:9/cb"
OIDC_BASIC = "Basic " + base64.b64encode(f"{OIDC_CLIENT}:{OIDC_SECRET}".encode()).decode()


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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A browser without redirects: keeps cookies (whatever their Secure
    flag: the bench is plain http on loopback) and shows each Location."""

    def __init__(self):
        self.cookies: dict[str, str] = {}
        self.opener = urllib.request.build_opener(_NoRedirect)

    def send(self, method: str, url: str, form: dict | None = None,
             headers: dict | None = None) -> tuple[int, str, str]:
        """(status, Location, body) of one request."""
        _check_local(url)
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        if self.cookies:
            req.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        try:
            r = self.opener.open(req, timeout=TIMEOUT)
        except urllib.error.HTTPError as e:
            r = e
        with r:
            for c in r.headers.get_all("Set-Cookie") or []:
                name, _, rest = c.partition("=")
                value = rest.split(";", 1)[0]
                if "max-age=0" in c.lower() or not value:
                    self.cookies.pop(name.strip(), None)
                else:
                    self.cookies[name.strip()] = value
            return r.status, r.headers.get("Location", ""), r.read().decode(errors="replace")


def _hidden(page: str, name: str) -> str:
    m = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', page)
    if not m:
        raise RuntimeError(f"no hidden input {name} in the page")
    import html
    return html.unescape(m.group(1))


def totp_code(secret_b32: str, unix: float) -> str:
    """RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8), casefold=True)
    return _hotp(key, int(unix) // 30)


def _hotp(key: bytes, counter: int) -> str:
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return f"{(struct.unpack('>I', mac[off:off + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


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


def cmd_status(url: str, header: str | None = None) -> int:
    headers = {}
    if header:
        name, _, value = header.partition(":")
        headers[name.strip()] = value.strip()
    try:
        code, body = http("GET", url, headers=headers)
    except OSError:
        code, body = 0, b""
    if header:
        m = re.search(rb'<html[^>]*\blang="([^"]+)"', body)
        print(code, m.group(1).decode() if m else "-")
    else:
        print(code)
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


def cmd_oidc_tokens(base: str, prefix: str, n_users: str, count: str, out: str) -> int:
    """COUNT refresh tokens of the bench OIDC client, each from its own
    authorization-code flow with PKCE (so each is its own session): per
    worker, one sign-in on the hosted /login page, then authorize -> code ->
    exchange as many times as needed."""
    total, workers = int(count), 4

    def flow(w: int) -> list[str]:
        b = Browser()
        email = f"{prefix}-{w % int(n_users)}@bench.example.com"
        got = []
        for _ in range(w, total, workers):
            verifier = secrets.token_urlsafe(48)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            state = secrets.token_urlsafe(8)
            q = urllib.parse.urlencode({
                "client_id": OIDC_CLIENT, "redirect_uri": OIDC_REDIRECT, "response_type": "code",
                "scope": "openid email offline_access", "state": state,
                "code_challenge": challenge, "code_challenge_method": "S256",
            })
            status, loc, _ = b.send("GET", f"{base}/oauth2/authorize?{q}")
            if loc.startswith("/login"):  # not signed in yet: the hosted page
                _, _, page = b.send("GET", base + loc)
                status, loc, body = b.send("POST", base + "/login", {
                    "csrf_token": _hidden(page, "csrf_token"), "email": email, "password": PASSWORD,
                    "redirect_to": _hidden(page, "redirect_to"),
                })
                if status != 303:
                    raise RuntimeError(f"POST /login answered {status}: {body[:200]!r}")
                status, loc, _ = b.send("GET", loc if loc.startswith("http") else base + loc)
            if status not in (302, 303) or not loc.startswith(OIDC_REDIRECT):
                raise RuntimeError(f"authorize answered {status} to {loc[:200]!r}")
            params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
            if params.get("state") != state or "code" not in params:
                raise RuntimeError(f"authorize sent back {loc[:200]!r}")
            status, _, body = b.send("POST", f"{base}/oauth2/token", {
                "grant_type": "authorization_code", "code": params["code"], "redirect_uri": OIDC_REDIRECT,
                "code_verifier": verifier,
            }, headers={"Authorization": OIDC_BASIC})
            if status != 200:
                raise RuntimeError(f"code exchange answered {status}: {body[:200]!r}")
            got.append(json.loads(body)["refresh_token"])
        return got

    with ThreadPoolExecutor(workers) as ex:
        tokens = [t for part in ex.map(flow, range(workers)) for t in part]
    Path(out).write_text("\n".join(tokens) + "\n")
    return 0


def cmd_mfa_users(target: str, base: str, prefix: str, first: str, n: str, steps: str, out: str) -> int:
    """N accounts PREFIX-<FIRST+i>@bench.example.com, each with an active
    TOTP factor, and each account's codes for the next STEPS time steps:
    one line per account, `email base_step code code ...` (the code of
    base_step first). The enrollment is verified with the code of the step
    before the current one (accepted within the one-step skew), so that the
    current step's code is still unused for the load."""
    if target == "peer":
        return _peer_mfa_users(base, prefix, first, n, steps, out)

    def one(i: int) -> str:
        email = f"{prefix}-{i}@bench.example.com"
        code, raw = http("POST", base + "/api/v1/auth/sign-up", {"email": email, "password": PASSWORD})
        if code not in (200, 201):
            raise RuntimeError(f"sign-up answered {code}: {raw[:200]!r}")
        auth = {"Authorization": "Bearer " + json.loads(raw)["tokens"]["access_token"]}
        code, raw = http("POST", base + "/api/v1/auth/mfa/totp/enroll", {"name": "bench"}, auth)
        if code != 200:
            raise RuntimeError(f"totp enroll answered {code}: {raw[:200]!r}")
        enrol = json.loads(raw)
        for _ in range(3):  # a retry when the step changes under us
            now = time.time()
            code, raw = http("POST", base + "/api/v1/auth/mfa/totp/verify",
                             {"factor_id": enrol["factor_id"], "code": totp_code(enrol["secret"], now - 30)}, auth)
            if code == 200:
                break
        else:
            raise RuntimeError(f"totp verify answered {code}: {raw[:200]!r}")
        step = int(time.time()) // 30
        codes = [totp_code(enrol["secret"], (step + k) * 30) for k in range(int(steps))]
        return " ".join([email, str(step)] + codes)

    with ThreadPoolExecutor(4) as ex:
        lines = list(ex.map(one, range(int(first), int(first) + int(n))))
    Path(out).write_text("\n".join(lines) + "\n")
    return 0


def _peer_mfa_users(base: str, prefix: str, first: str, n: str, steps: str, out: str) -> int:
    """The same for Better Auth's twoFactor plugin: sign up, enable (which
    asks for the password again) and verify a first code with the session's
    bearer token. Better Auth keeps no used step, so the code of the current
    step verifies the factor."""

    def one(i: int) -> str:
        email = f"{prefix}-{i}@bench.example.com"
        code, raw = http("POST", base + "/api/auth/sign-up/email",
                         {"email": email, "password": PASSWORD, "name": "Bench User"})
        if code != 200:
            raise RuntimeError(f"sign-up answered {code}: {raw[:200]!r}")
        auth = {"Authorization": "Bearer " + json.loads(raw)["token"]}
        code, raw = http("POST", base + "/api/auth/two-factor/enable", {"password": PASSWORD}, auth)
        if code != 200:
            raise RuntimeError(f"two-factor enable answered {code}: {raw[:200]!r}")
        uri = json.loads(raw)["totpURI"]
        secret = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(uri).query))["secret"]
        code, raw = http("POST", base + "/api/auth/two-factor/verify-totp",
                         {"code": totp_code(secret, time.time())}, auth)
        if code != 200:
            raise RuntimeError(f"two-factor verify-totp answered {code}: {raw[:200]!r}")
        step = int(time.time()) // 30
        codes = [totp_code(secret, (step + k) * 30) for k in range(int(steps))]
        return " ".join([email, str(step)] + codes)

    with ThreadPoolExecutor(4) as ex:
        lines = list(ex.map(one, range(int(first), int(first) + int(n))))
    Path(out).write_text("\n".join(lines) + "\n")
    return 0


def cmd_oidc_client() -> int:
    print(f"""[oidc_provider.clients.{OIDC_CLIENT}]
name = "Bench app"
secret = "{OIDC_SECRET}"
redirect_uris = ["{OIDC_REDIRECT}"]
scopes = ["openid", "email", "offline_access"]
first_party = true""")
    return 0


def cmd_oidc_basic() -> int:
    print(OIDC_BASIC)
    return 0


def cmd_mfa_users_count(signin_rps: str, duration: str, conns: str) -> int:
    """Accounts for one run of lua/mfa.lua, each challenged at most once:
    twice the pairs the plain sign-in rate of this run allows in DURATION (a
    pair costs at least a sign-in; the machine's load may change between the
    two loads), plus 4 per connection (each thread has its own slice). 50/s
    when no sign-in rate is known."""
    rps = float(signin_rps)
    if rps != rps or rps <= 0:
        rps = 50.0
    print(int(2 * rps * float(duration)) + 1 + 4 * int(conns))
    return 0


def cmd_totp(secret: str, unix: str | None = None) -> int:
    print(totp_code(secret, float(unix) if unix else time.time()))
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
            "cpu_s": float(kv.get("cpu_s", "nan")),
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
    mm = re.search(r"^mfa: challenges_ok=(\d+) signins=(\d+) duration_us=(\d+)", text, re.M)
    if mm:  # lua/mfa.lua: completed pairs (sign-in answered, challenge passed) per second
        ok, us = int(mm.group(1)), int(mm.group(3))
        r["pairs"] = ok / (us / 1e6) if us else float("nan")
    if r["requests"] == 0:  # nothing completed: no latency to speak of
        r["p50"] = r["p99"] = float("nan")
    return r


class Runs:
    """The runs of one test against one target. A run's file is
    TARGET.TEST.RUN.txt, or TARGET.TEST.RUN.INSTANCE.txt when several wrk
    processes loaded several instances at once (bench/postgres.sh): their
    rates, requests and errors add up, and a latency is the worst of them."""

    def __init__(self, work: Path, target: str, test: str):
        groups: dict[str, list[dict]] = {}
        for f in sorted((work / "wrk").glob(f"{target}.{test}.*.txt")):
            parsed = parse_wrk(f)
            if parsed:
                run = f.name[len(f"{target}.{test}."):].split(".")[0]
                groups.setdefault(run, []).append(parsed)
        self.runs = [{**_merge(g), "run": run} for run, g in groups.items()]

    def __bool__(self) -> bool:
        return bool(self.runs)

    def med(self, key: str) -> float:
        vals = [r[key] for r in self.runs if key in r and r[key] == r[key]]
        return statistics.median(vals) if vals else float("nan")

    def errors(self) -> tuple[int, int, int]:
        return (
            sum(r["non2xx"] for r in self.runs),
            sum(r["sock"] for r in self.runs),
            sum(r["requests"] for r in self.runs),
        )


def _merge(parts: list[dict]) -> dict:
    """One run made of the wrk outputs of several instances loaded at once."""
    if len(parts) == 1:
        return parts[0]
    out: dict = {}
    for key in ("rps", "requests", "non2xx", "sock", "pairs", "cpu_s"):
        if any(key in x for x in parts):
            out[key] = sum(x.get(key, 0) for x in parts)
    for key in ("p50", "p99"):
        out[key] = max((x[key] for x in parts if key in x and x[key] == x[key]), default=float("nan"))
    return out


def webhook_runs(work: Path) -> list[dict]:
    """The rows bench/webhooks/run.py wrote with --json (one endpoint)."""
    out = []
    for f in sorted((work / "wrk").glob("derp.webhooks.*.json")):
        try:
            out += json.loads(f.read_text())
        except (OSError, ValueError):
            pass
    return out


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


def cpu_shares(env: dict[str, str], target: str, test: str) -> list[dict[str, float]]:
    """Per run of TEST, the cores that TARGET's hashing threads and its other
    threads used, and the machine's idle cores, from the `cpu_split`
    snapshots run.sh takes before and after the run (hash, other, idle ticks
    of 1/100 s, wall clock)."""
    out = []
    for key in sorted(k for k in env if k.startswith(f"{target}.{test}_cpu.")):
        try:
            v = [float(x) for x in env[key].split()]
        except ValueError:
            continue
        if len(v) != 8 or v[7] <= v[3]:
            continue
        wall = v[7] - v[3]
        out.append({
            "hash": (v[4] - v[0]) / 100.0 / wall,
            "serve": (v[5] - v[1]) / 100.0 / wall,
            "idle": (v[6] - v[2]) / 100.0 / wall,
            "wall": wall,
        })
    return out


def _med(runs: list[dict[str, float]], key: str) -> float:
    vals = [r[key] for r in runs if r.get(key, float("nan")) == r.get(key, float("nan"))]
    return statistics.median(vals) if vals else float("nan")


# The loads bench/postgres.sh runs: test, label, connections (hash or
# light), figure, digits.
PG_LOADS = [
    ("signup", "sign-ups/s", "hash", "rps", 1),
    ("signin", "sign-ins/s", "hash", "rps", 1),
    ("refresh", "refreshes/s", "light", "rps", 0),
    ("session", "/session req/s", "light", "rps", 0),
]


def cmd_pg_report(workdir: str) -> int:
    """bench/postgres.sh's own table: each setup's median run per load."""
    work = Path(workdir)
    env = _env(work / "results.env")
    setups = env.get("pg.setups", "").split()
    names = {"sqlite": ("derp_sqlite", "derp, SQLite"), "pg1": ("derp_pg1", "derp, PostgreSQL x1"),
             "pg2": ("derp_pg2", "derp, PostgreSQL x2"), "peer_pg1": ("peer_pg1", "Better Auth, PostgreSQL x1"),
             "peer_pg2": ("peer_pg2", "Better Auth, PostgreSQL x2")}
    cols = [names[x] for x in setups if x in names]
    print(f"median of {env.get('pg.runs', '?')} runs x {env.get('pg.duration', '?')}s; "
          "a cell is the rate (p99 in ms)")
    print()
    print("| load | " + " | ".join(c[1] for c in cols) + " |")
    print("| --- |" + " --- |" * len(cols))
    for test, label, _, key, digits in PG_LOADS:
        cells = []
        for target, _ in cols:
            runs = Runs(work, target, test)
            cells.append(f"{_num(runs.med(key), digits=digits)} ({_num(runs.med('p99'))})" if runs else "n/a")
        print(f"| {label} | " + " | ".join(cells) + " |")
    errs = []
    for target, title in cols:
        e = [Runs(work, target, t).errors() for t, *_ in PG_LOADS]
        errs.append(f"{title}: {sum(x[0] for x in e)} non-2xx, {sum(x[1] for x in e)} socket errors, "
                    f"{sum(x[2] for x in e):,} requests")
    print()
    print("errors: " + "; ".join(errs))
    return 0


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

    if "probe.late_1ms_per_s" in env:
        section("the machine at rest (examples/stall_probe.rs: a thread per CPU waking every 200 µs)")
        row("  wake-ups late by 1 ms or more (/s, all CPUs)", {"derp": f("probe.late_1ms_per_s")}, digits=1,
            ratio=False, na={"peer": "—"})
        row("  latest wake-up (ms)", {"derp": f("probe.max_ms")}, digits=2, ratio=False, na={"peer": "—"})
        row("  time lost in those pauses (%)", {"derp": f("probe.lost_pct")}, digits=2, ratio=False,
            na={"peer": "—"})

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
    orf = r("derp", "oidc_refresh")
    row(f"OIDC /oauth2/token refresh_token grants/s (c={cl})", {"derp": orf.med("rps")}, digits=0,
        na={"peer": "n/a (no OIDC provider)"})
    row("  OIDC refresh p99 (ms)", {"derp": orf.med("p99")}, na={"peer": "n/a"})
    mfa = {t: r(t, "mfa").med("pairs") for t in targets}
    row(f"sign-in + TOTP challenge pairs/s (c={ch})", mfa, digits=1)
    row("  pairs / plain sign-ins/s", {t: _ratio(mfa.get(t, float('nan')), si.get(t, float('nan')), pct=True)
                                       or "—" for t in targets}, ratio=False)

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
    lgd = r("derp", "login_de")
    row("/login renders/s, Accept-Language: de",
        {"derp": lgd.med("rps") if lgd else env.get("derp.login_de", env.get("derp.login", "n/a (not measured)"))},
        digits=0, na={"peer": "n/a (no hosted pages)"})
    row("  de / en", {"derp": _ratio(lgd.med("rps"), lg.med("rps"), pct=True) or "—"}, ratio=False,
        na={"peer": "n/a"})

    wh = webhook_runs(work)
    section(f"webhooks: {env.get('webhook_events', '?')} events, 1 endpoint, a local receiver (own derp)")
    whv = (statistics.median(x["delivered_per_s"] for x in wh) if wh
           else env.get("derp.webhooks", "n/a (not measured)"))
    row("webhook deliveries/s", {"derp": whv}, digits=0, na={"peer": "n/a (no webhooks)"})
    row("  event to arrival p50 (ms, ±1 s)", {"derp": statistics.median(x["p50_ms"] for x in wh) if wh
                                               else float("nan")}, digits=0, na={"peer": "n/a"})

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
    # How the cores were shared (derp's hashing threads have names of their
    # own; the peer's do not, so its column is n/a).
    solo_cpu = cpu_shares(env, "derp", "signin")
    fair_cpu = cpu_shares(env, "derp", "fair")
    gen = [x["cpu_s"] / float(env.get("duration", "nan")) for x in (fs["derp"].runs if fs.get("derp") else [])
           if "cpu_s" in x]
    no_split = {"peer": "n/a (threads not named)"}
    row("  cores hashing sign-ins: solo / fair share",
        {"derp": f"{_num(_med(solo_cpu, 'hash'), digits=2)} / {_num(_med(fair_cpu, 'hash'), digits=2)}"},
        ratio=False, na=no_split)
    row("  cores serving the rest (fair share)", {"derp": _med(fair_cpu, "serve")}, digits=2, ratio=False,
        na=no_split)
    row("  cores of the /session generator", {"derp": statistics.median(gen) if gen else float("nan")},
        digits=2, ratio=False, na=no_split)
    row("  cores idle (fair share)", {"derp": _med(fair_cpu, "idle")}, digits=2, ratio=False, na=no_split)
    if fs.get("derp") and any(k.startswith("derp.fair_probe.") for k in env):
        def probe(run: str) -> str:
            seen = env.get(f"derp.fair_probe.{run}", "").split()
            return " / ".join(seen) if len(seen) == 2 else "? / ?"
        runs = sorted(fs["derp"].runs, key=lambda x: int(x["run"]) if str(x["run"]).isdigit() else 0)
        per_run = ", ".join(f"{_num(x.get('p99', float('nan')))} / {probe(x['run'])}" for x in runs)
        row("  each run: p99 / probe's latest wake-up (ms) / % lost", {"derp": per_run}, ratio=False,
            na={"peer": "—"})

    if Runs(work, "derp_pg1", "session") or Runs(work, "derp_pg2", "session"):
        section(f"PostgreSQL {env.get('pg.version', '')}: one cluster on the same machine, "
                "wrk split over the instances (bench/postgres.sh)")
        for n in (1, 2):
            inst = "1 instance" if n == 1 else f"{n} instances"
            for test, label, c, key, digits in PG_LOADS:
                d, p = Runs(work, f"derp_pg{n}", test), Runs(work, f"peer_pg{n}", test)
                cc = ch if c == "hash" else cl
                na = {"peer": "n/a (no refresh tokens)"} if test == "refresh" else None
                row(f"{label}, {inst} (c={cc})", {"derp": d.med(key), "peer": p.med(key)}, digits=digits, na=na)
                if test in ("refresh", "session"):
                    row("  p99 (ms)", {"derp": d.med("p99"), "peer": p.med("p99")},
                        na={"peer": "n/a"} if na else None)

    section("memory (server process)")
    row("peak RSS sampled under load (MiB)", {t: f(f"{t}.rss_peak_kb") / 1024 for t in targets}, digits=1)
    row("VmHWM at end (MiB)", {t: f(f"{t}.vmhwm_kb") / 1024 for t in targets}, digits=1)

    section("errors over all runs (non-2xx / socket errors / requests)")
    for test in ("signup", "signin", "mfa", "refresh", "oidc_refresh", "session", "healthz", "login", "login_de",
                 "mixed_signin", "mixed_session", "fair_signin", "fair_session"):
        vals = {}
        for t in targets:
            runs = r(t, test)
            if runs:
                e = runs.errors()
                vals[t] = f"{e[0]} / {e[1]} / {e[2]:,}"
        if vals:
            row(f"  {test}", {t: vals.get(t, "—") for t in targets}, ratio=False)
    for n in (1, 2):
        vals = {}
        for t in targets:
            e = [Runs(work, f"{t}_pg{n}", test).errors() for test, *_ in PG_LOADS]
            if any(x[2] for x in e):
                vals[t] = f"{sum(x[0] for x in e)} / {sum(x[1] for x in e)} / {sum(x[2] for x in e):,}"
        if vals:
            row(f"  PostgreSQL x{n} (every load)", {t: vals.get(t, "—") for t in targets}, ratio=False)
    if wh:
        want = sum(x["events"] * x["endpoints"] for x in wh)
        got = sum(x["delivered"] for x in wh)
        row("  webhooks (undelivered / — / deliveries)", {"derp": f"{want - got} / — / {got:,}"}, ratio=False,
            na={"peer": "—"})

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
        "token is queued for a later request (no replay, default reuse grace); the OIDC row "
        "does the same at /oauth2/token, each seed from its own code flow with PKCE.",
        f"sign-in + TOTP: a pair is a password sign-in answered 'second factor required', then the "
        f"challenge with the current code; each run has its own accounts ({env.get('derp.mfa_users', '?')} "
        "for derp), each challenged once, so no code is replayed; the rate counts passed challenges.",
        ("hashing differs: derp argon2id (m=19 MiB, t=2, p=1), Better Auth scrypt (N=16384, r=16, p=1, "
         "dkLen=64); " if peer_ok else "derp hashes with argon2id (m=19 MiB, t=2, p=1); ")
        + "the hash bound is cores / one-core hash time, the most sign-ins a second the CPU allows.",
        "load generator (wrk, 2 threads) shares the same 2 cores with the server under test"
        + ("; Better Auth runs in one Node process (its hashing in libuv's thread pool)." if peer_ok else "."),
    ]
    if peer_ok:
        notes.append("Better Auth's /healthz is a bare Node handler in the peer script; its /session is "
                     "GET /api/auth/get-session with the bearer plugin.")
    if env.get("pg.reason"):
        notes.append(f"PostgreSQL rows: {env['pg.reason']}.")
    if Runs(work, "derp_pg1", "session"):
        notes.append(f"PostgreSQL rows: Debian's PostgreSQL {env.get('pg.version', '')} in a throwaway cluster on "
                     "the same cores (fsync on), one database per setup; with two instances, each gets half the "
                     "connections and its own wrk, the rates add up and a p99 is the worse of the two"
                     + ("; Better Auth uses pg's pool (10 connections per process)." if peer_ok else "."))
    if "probe.late_1ms_per_s" in env:
        realtime = env.get("probe.policy", "").startswith("real-time")
        steal = env.get("probe.steal_pct", "")
        notes.append(
            "the machine's pauses: examples/stall_probe.rs, one thread per CPU held to its CPU "
            f"({env.get('probe.policy', '?')}), sleeps to deadlines and notes how late it wakes: on the idle "
            "machine before any load (every 200 µs), and beside each of derp's fair-share runs (every 10 ms, "
            "to disturb the run less; there a late wake-up of X ms means a pause of X to X + 10 ms, and "
            "shorter pauses can go unseen). "
            + ("A real-time thread waits for no other thread of normal priority, so its late wake-ups are "
               "pauses of the machine itself (the host's steal, kernel threads, interrupts), which the server "
               "and the load generators meet too"
               if realtime else
               "At normal priority its late wake-ups beside a busy run also count ordinary waits for the CPU")
            + (f"; the host's steal over the idle probe's seconds: {steal}% of all CPUs' time"
               if steal and steal != "nan" else "")
            + ".")
    fc = foreign_cpu(work, cores)
    if fc:
        other, share = fc
        warn = " (figures are low: rerun on a quiet machine)" if share > 0.05 else ""
        notes.append(f"other processes used {other:.0f} core-seconds during the loads before the PostgreSQL rows, "
                     f"{100 * share:.0f}% "
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
        "oidc-tokens": cmd_oidc_tokens,
        "mfa-users": cmd_mfa_users,
        "totp": cmd_totp,
        "oidc-client": cmd_oidc_client,
        "oidc-basic": cmd_oidc_basic,
        "mfa-users-count": cmd_mfa_users_count,
        "report": cmd_report,
        "pg-report": cmd_pg_report,
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
