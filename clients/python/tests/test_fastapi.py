"""derp_client.fastapi's dependencies in a FastAPI app, through httpx's ASGI
transport, with tokens from a live derp."""

import uuid

import httpx
import pytest
from conftest import PASSWORD, free_port, new_email
from fastapi import Depends, FastAPI

from derp_client import DerpClient, SessionInfo
from derp_client.fastapi import current_user, require_org_role, require_role


def make_app(client: DerpClient) -> FastAPI:
    app = FastAPI()
    app.state.derp_client = client

    @app.get("/me")
    async def me(session: SessionInfo = Depends(current_user)):
        return {"user_id": session.user_id, "email": session.email, "role": session.role}

    @app.get("/admin")
    async def admin(session: SessionInfo = Depends(require_role("admin"))):
        return {"ok": session.user_id}

    @app.get("/orgs/{org_id}/settings")
    async def settings(org_id: str, session: SessionInfo = Depends(require_org_role("admin", org_param="org_id"))):
        return {"org_id": session.org_id, "org_role": session.org_role}

    @app.get("/invoices")
    async def invoices(session: SessionInfo = Depends(require_org_role("billing"))):
        return {"org_role": session.org_role}

    @app.get("/org-anything")
    async def anything(session: SessionInfo = Depends(require_org_role())):
        return {"org_id": session.org_id}

    return app


@pytest.fixture
async def api(derp):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app(derp)), base_url="http://app") as c:
        yield c


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def test_current_user(api, derp):
    assert (await api.get("/me")).status_code == 401
    res = await api.get("/me", headers=auth("nope"))
    assert res.status_code == 401 and res.headers["www-authenticate"] == "Bearer"
    email = new_email()
    result = await derp.auth.sign_up(email=email, password=PASSWORD)
    res = await api.get("/me", headers=auth(result.tokens.access_token))
    assert res.status_code == 200
    assert res.json() == {"user_id": result.user.id, "email": email, "role": "default"}


async def test_require_role(api, derp, derp_server):
    result = await derp.auth.sign_up(email=new_email(), password=PASSWORD)
    assert (await api.get("/admin")).status_code == 401
    assert (await api.get("/admin", headers=auth(result.tokens.access_token))).status_code == 403
    email = new_email("admin")
    derp_server.cli("admin", "create", "--email", email, "--password", PASSWORD)
    admin = await derp.auth.sign_in_with_password(email, PASSWORD)
    res = await api.get("/admin", headers=auth(admin.tokens.access_token))
    assert res.status_code == 200 and res.json() == {"ok": admin.user.id}


async def test_require_org_role(api, derp):
    owner = await derp.auth.sign_up(email=new_email(), password=PASSWORD)
    member = await derp.auth.sign_up(email=new_email(), password=PASSWORD)
    org = await derp.auth.create_org(name="Org", slug=f"org-{uuid.uuid4().hex[:8]}", access_token=owner.tokens.access_token)
    other = await derp.auth.create_org(name="Other", slug=f"org-{uuid.uuid4().hex[:8]}", access_token=owner.tokens.access_token)
    await derp.auth.add_org_member(org_id=org.id, user_id=member.user.id, access_token=owner.tokens.access_token)

    # No active org: 403.
    assert (await api.get("/org-anything", headers=auth(owner.tokens.access_token))).status_code == 403

    owner_active = await derp.auth.set_active_org(access_token=owner.tokens.access_token, org_id=org.id)
    res = await api.get(f"/orgs/{org.id}/settings", headers=auth(owner_active.access_token))
    assert res.status_code == 200 and res.json() == {"org_id": org.id, "org_role": "owner"}
    # Another org in the path than the active one.
    assert (await api.get(f"/orgs/{other.id}/settings", headers=auth(owner_active.access_token))).status_code == 403

    member_active = await derp.auth.set_active_org(access_token=member.tokens.access_token, org_id=org.id)
    assert (await api.get("/org-anything", headers=auth(member_active.access_token))).status_code == 200
    assert (await api.get(f"/orgs/{org.id}/settings", headers=auth(member_active.access_token))).status_code == 403
    assert (await api.get(f"/orgs/{org.id}/settings")).status_code == 401
    assert (await api.get("/invoices", headers=auth(member_active.access_token))).status_code == 403


async def test_require_org_role_with_a_custom_role(api, derp):
    """derp's `[orgs] roles = ["billing"]`: the role rides by name in the
    token; it has a member's rank and opens exactly what requires it."""
    owner = await derp.auth.sign_up(email=new_email(), password=PASSWORD)
    biller = await derp.auth.sign_up(email=new_email(), password=PASSWORD)
    org = await derp.auth.create_org(name="Org", slug=f"org-{uuid.uuid4().hex[:8]}", access_token=owner.tokens.access_token)
    member = await derp.auth.add_org_member(
        org_id=org.id, user_id=biller.user.id, role="billing", access_token=owner.tokens.access_token
    )
    assert member.role == "billing"
    active = await derp.auth.set_active_org(access_token=biller.tokens.access_token, org_id=org.id)
    res = await api.get("/invoices", headers=auth(active.access_token))
    assert res.status_code == 200 and res.json() == {"org_role": "billing"}
    assert (await api.get("/org-anything", headers=auth(active.access_token))).status_code == 200
    assert (await api.get(f"/orgs/{org.id}/settings", headers=auth(active.access_token))).status_code == 403
    owner_active = await derp.auth.set_active_org(access_token=owner.tokens.access_token, org_id=org.id)
    assert (await api.get("/invoices", headers=auth(owner_active.access_token))).status_code == 403


async def test_keys_unavailable_is_503(derp_server, derp):
    result = await derp.auth.sign_up(email=new_email(), password=PASSWORD)
    async with DerpClient(derp_server.url, jwks_url=f"http://127.0.0.1:{free_port()}/jwks") as blind:
        transport = httpx.ASGITransport(app=make_app(blind))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as c:
            assert (await c.get("/me", headers=auth(result.tokens.access_token))).status_code == 503
            assert (await c.get("/me")).status_code == 401
