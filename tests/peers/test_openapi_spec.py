"""derp's /openapi.json against a validator nobody here wrote:
openapi-spec-validator checks the served document against the OpenAPI 3.1
schema (and that every path template's parameters are declared); then real
answers of a live derp are checked against the documented schemas with
jsonschema (Draft 2020-12, which OpenAPI 3.1 schemas are)."""

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

ROOT = Path(__file__).resolve().parents[2]
DERP_BIN = os.environ.get("DERP_BIN", str(ROOT / "target" / "debug" / "derp"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = free_port()
        config = tmp / "derp.toml"
        config.write_text(f"""
[server]
bind = "127.0.0.1:{port}"
data_dir = "{tmp / 'data'}"
[auth.native]
enable_confirmation = false
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
            yield f"http://127.0.0.1:{port}", res.json()
        finally:
            derp.terminate()
            derp.wait(timeout=10)


@pytest.fixture(scope="module")
def spec(served):
    return served[1]


def test_the_served_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"] == "3.1.0"
    errors = [str(e).splitlines()[0] for e in OpenAPIV31SpecValidator(spec).iter_errors()]
    operations = sum(1 for item in spec["paths"].values() for m in item if m in ("get", "post", "put", "patch", "delete"))
    print(f"openapi-spec-validator: {len(errors)} errors in {len(spec['paths'])} paths, {operations} operations")
    assert errors == [], f"{len(errors)} errors: {errors}"
    validate(spec)  # the validator's own entry point, with its version detection


def test_every_templated_path_declares_its_parameters(spec):
    for path, item in spec["paths"].items():
        names = {part.split("}")[0] for part in path.split("{")[1:]}
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, f"{method} {path}"


def conforms(spec, res: httpx.Response, method: str, path: str) -> None:
    """`res` is one of the responses documented for `method path`, and its
    JSON body matches that response's schema."""
    responses = spec["paths"][path][method]["responses"]
    code = str(res.status_code)
    documented = responses.get(code) or responses.get(code[0] + "XX")
    assert documented, f"{method} {path}: {code} is not documented"
    content = documented.get("content", {}).get("application/json")
    if content is None:
        assert not res.content, f"{method} {path}: {code} has an undocumented body"
        return
    schema = {**content["schema"], "components": spec["components"]}
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(res.json())]
    assert errors == [], f"{method} {path} {code}: {errors} in {res.text}"


def test_live_answers_match_the_documented_schemas(served):
    base, spec = served
    c = httpx.Client(base_url=base)
    email = "schema@example.com"
    password = "correct horse battery"
    res = c.post("/api/v1/auth/sign-up", json={"email": email, "password": password})
    assert res.status_code == 201
    conforms(spec, res, "post", "/api/v1/auth/sign-up")
    tokens = res.json()["tokens"]
    auth = {"authorization": f"Bearer {tokens['access_token']}"}
    for path in ["/api/v1/auth/session", "/api/v1/auth/user", "/api/v1/auth/sessions", "/api/v1/orgs"]:
        res = c.get(path, headers=auth)
        assert res.status_code == 200, path
        conforms(spec, res, "get", path)
    res = c.post("/api/v1/orgs", json={"name": "Schema Org", "slug": "schema-org"}, headers=auth)
    assert res.status_code == 201
    conforms(spec, res, "post", "/api/v1/orgs")
    for path in ["/api/v1/orgs/{org}", "/api/v1/orgs/{org}/members", "/api/v1/orgs/{org}/invitations"]:
        res = c.get(path.replace("{org}", "schema-org"), headers=auth)
        assert res.status_code == 200, path
        conforms(spec, res, "get", path)
    res = c.post("/api/v1/orgs/schema-org/invitations", json={"email": "guest@example.com"}, headers=auth)
    assert res.status_code == 201
    conforms(spec, res, "post", "/api/v1/orgs/{org}/invitations")
    res = c.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert res.status_code == 200
    conforms(spec, res, "post", "/api/v1/auth/refresh")
    res = c.get("/api/v1/admin/overview", headers=auth)
    assert res.status_code == 403
    conforms(spec, res, "get", "/api/v1/admin/overview")
    res = c.post("/api/v1/auth/sign-in", json={"email": email, "password": "wrong password!"})
    assert res.status_code in (401, 403)
    conforms(spec, res, "post", "/api/v1/auth/sign-in")
    res = c.post("/api/v1/auth/sign-up", json={"email": "not an email", "password": password})
    assert res.status_code == 400
    conforms(spec, res, "post", "/api/v1/auth/sign-up")
    res = c.get("/api/v1/auth/session")
    assert res.status_code == 401
    conforms(spec, res, "get", "/api/v1/auth/session")
    for path in ["/healthz", "/readyz", "/.well-known/jwks.json", "/.well-known/openid-configuration"]:
        res = c.get(path)
        assert res.status_code == 200
        conforms(spec, res, "get", path)
