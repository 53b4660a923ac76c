"""derp's /openapi.json against a validator nobody here wrote:
openapi-spec-validator checks the served document against the OpenAPI 3.1
schema (and that every path template's parameters are declared)."""

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

ROOT = Path(__file__).resolve().parents[2]
DERP_BIN = os.environ.get("DERP_BIN", str(ROOT / "target" / "debug" / "derp"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def spec():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = free_port()
        config = tmp / "derp.toml"
        config.write_text(f"""
[server]
bind = "127.0.0.1:{port}"
data_dir = "{tmp / 'data'}"
""")
        derp = subprocess.Popen([DERP_BIN, "serve", "--config", str(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    res = httpx.get(f"http://127.0.0.1:{port}/openapi.json")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or derp.poll() is not None:
                        raise
                    time.sleep(0.1)
            assert res.status_code == 200
            assert res.headers["content-type"].startswith("application/json")
            yield res.json()
        finally:
            derp.terminate()
            derp.wait(timeout=10)


def test_the_served_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"] == "3.1.0"
    errors = [str(e).splitlines()[0] for e in OpenAPIV31SpecValidator(spec).iter_errors()]
    assert errors == [], f"{len(errors)} errors: {errors}"
    validate(spec)  # the validator's own entry point, with its version detection


def test_every_templated_path_declares_its_parameters(spec):
    for path, item in spec["paths"].items():
        names = {part.split("}")[0] for part in path.split("{")[1:]}
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, f"{method} {path}"
