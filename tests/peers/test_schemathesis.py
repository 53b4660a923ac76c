"""schemathesis (pinned in requirements.txt) fuzzes every operation of a live
derp's /openapi.json, once without credentials and once with a user's bearer
token, and fails on any 5xx (`not_a_server_error`) or any answer that does
not match the documented schema (`response_schema_conformance`).

Bounded: `SCHEMATHESIS_MAX_EXAMPLES` cases per operation and phase (5 by
default: about a minute for both runs on two cores). The counts of each run
are printed (`pytest -s` shows them) and kept in target/schemathesis-*.txt.
"""

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
ST_BIN = Path(os.environ.get("SCHEMATHESIS_BIN", str(Path(sys.executable).parent / "schemathesis")))
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "5")
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base():
    (ROOT / "target" / "schemathesis-counts.txt").unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = free_port()
        config = tmp / "derp.toml"
        # Limits off, so that the fuzzer's many sign-ups and sign-ins are
        # answered by the code under test rather than by 429.
        config.write_text(f"""
[server]
bind = "127.0.0.1:{port}"
# A host name, not an IP address, so that passkeys (WebAuthn refuses IP
# addresses as relying party) are offered and their endpoints fuzzed.
public_url = "http://localhost:{port}"
data_dir = "{tmp / 'data'}"
[auth.native]
enable_confirmation = false
enable_magic_link = true
[rate_limit]
sign_in_per_ip = 0
sign_in_per_account = 0
sign_up_per_ip = 0
email_per_address = 0
lockout_after = 0
[orgs]
roles = ["billing"]
""")
        log = open(tmp / "derp.log", "wb")
        derp = subprocess.Popen([DERP_BIN, "serve", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or derp.poll() is not None:
                    raise RuntimeError("derp did not start")
                time.sleep(0.1)
            yield url
        finally:
            derp.terminate()
            derp.wait(timeout=10)
            log.close()


def run(base: str, name: str, *extra: str) -> str:
    (ROOT / "target").mkdir(exist_ok=True)
    if not ST_BIN.exists():
        pytest.fail(f"schemathesis is not installed at {ST_BIN}: run ./test.sh (tests/peers/requirements.txt)")
    out = subprocess.run(
        [
            str(ST_BIN), "run", f"{base}/openapi.json",
            "--checks", "not_a_server_error,response_schema_conformance",
            "--phases", "examples,coverage,fuzzing",
            "--max-examples", MAX_EXAMPLES,
            "--generation-database", "none",
            "--seed", "17",
            "--workers", "2",
            "--request-timeout", "10",
            "--no-color",
            *extra,
        ],
        capture_output=True, text=True, timeout=600,
        # Its working files (.schemathesis/) go under target/, not the repository.
        cwd=ROOT / "target",
    )
    text = out.stdout + out.stderr
    (ROOT / "target" / f"schemathesis-{name}.txt").write_text(text)
    summary = re.search(r"Test cases:\s*\n\s*(.+)", text)
    line = f"schemathesis ({name}): {summary.group(1).strip() if summary else '?'}"
    print(line)
    with open(ROOT / "target" / "schemathesis-counts.txt", "a") as counts:
        counts.write(line + "\n")
    assert out.returncode == 0, text[-6000:]
    assert summary and "passed" in summary.group(1), text[-3000:]
    return text


def test_no_5xx_and_every_answer_matches_the_schema_without_credentials(base):
    run(base, "anonymous")


def test_no_5xx_and_every_answer_matches_the_schema_with_a_bearer_token(base):
    res = httpx.post(f"{base}/api/v1/auth/sign-up", json={"email": "fuzzer@example.com", "password": PASSWORD})
    assert res.status_code == 201, res.text
    token = res.json()["tokens"]["access_token"]
    # Signing out would end the token's session and leave the rest of the run
    # unauthenticated: that operation is fuzzed in the anonymous run.
    run(base, "bearer", "--header", f"Authorization: Bearer {token}", "--exclude-path", "/api/v1/auth/sign-out")
