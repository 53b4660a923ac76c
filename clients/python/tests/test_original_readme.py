"""The original library's README, section by section, rewritten with
derp_client and run against a live derp configured like the original's own
example (`algorithm = "HS256"` with a secret, confirmation on, magic links
on). Each step keeps the original's call and says what differs, as
docs/migrating-from-derp-py.md does."""

import uuid
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from conftest import HS256_SECRET, SERVICE_KEY, new_email
from fastapi import Depends, FastAPI, HTTPException, Request

from derp_client import DerpClient, DerpError, SessionInfo


async def test_the_original_readme_runs_against_derp(derp_hs256):
    # derp = DerpClient(config)  ->  the URL of derp, and the same HS256 secret.
    async with DerpClient(derp_hs256.url, jwt_secret=HS256_SECRET, service_key=SERVICE_KEY) as derp:
        request = {"user-agent": "readme-test/1.0", "x-forwarded-for": "203.0.113.9"}
        email = new_email("alice")

        # Sign Up
        result = await derp.auth.sign_up(
            email=email,
            password="s3cur3passw0rd",
            request=request,  # auto-extracts user_agent and ip_address
            confirmation_url="http://app.test/callback/confirm",
        )
        # With enable_confirmation, derp gives no tokens until the address
        # is confirmed (the original gave full tokens at once).
        assert result.confirmation_required and result.tokens is None
        user, tokens = await derp.auth.confirm_email(derp_hs256.mail_token(email))
        assert user.email == email and tokens.access_token

        # Sign In
        result = await derp.auth.sign_in_with_password(email, "s3cur3passw0rd", request=request)
        assert result.user.id == user.id and result.tokens.access_token

        # Refresh Tokens
        new_tokens = await derp.auth.refresh_token(result.tokens.refresh_token)
        assert new_tokens.access_token and new_tokens.refresh_token != result.tokens.refresh_token

        # Authenticate Request
        session = await derp.auth.authenticate({"authorization": f"Bearer {new_tokens.access_token}"})
        # Returns SessionInfo(user_id, session_id, role, expires_at, org_id, ...)
        assert session.user_id == user.id and session.session_id and session.role == "default"
        assert session.expires_at and session.org_id is None
        assert await derp.auth.authenticate({}) is None  # None without a valid token

        # OAuth (Google)
        # 1. Generate authorization URL
        csrf_token = uuid.uuid4().hex
        url = derp.auth.get_oauth_authorization_url("google", state=csrf_token)
        assert parse_qs(urlparse(url).query)["state"] == [csrf_token]
        # 2. Handle callback: the provider's code (here the test's provider is
        # unreachable, so derp answers 502 instead of signing in).
        with pytest.raises(DerpError) as e:
            await derp.auth.sign_in_with_oauth("google", code="auth-code")
        assert e.value.status == 502

        # Magic Link
        # 1. Send magic link email
        await derp.auth.sign_in_with_magic_link(email=email, magic_link_url="http://app.test/callback/magic")
        # 2. Verify token from the link
        user2, tokens2 = await derp.auth.verify_magic_link(derp_hs256.mail_token(email))
        assert user2.id == user.id and tokens2.access_token

        # Organizations
        slug = f"acme-{uuid.uuid4().hex[:8]}"
        org = await derp.auth.create_org(name="Acme Inc", slug=slug, creator_id=user.id)
        with pytest.raises(DerpError) as e:  # the original's OrgAlreadyExistsError
            await derp.auth.create_org(name="Acme Inc", slug=slug, creator_id=user.id)
        assert e.value.code == "org_exists"

        other_email = new_email("bob")
        await derp.auth.sign_up(email=other_email, password="s3cur3passw0rd")
        other_user, _ = await derp.auth.confirm_email(derp_hs256.mail_token(other_email))
        other_user_id = other_user.id
        await derp.auth.add_org_member(org_id=org.id, user_id=other_user_id, role="member")
        with pytest.raises(DerpError) as e:  # the original's OrgMemberExistsError
            await derp.auth.add_org_member(org_id=org.id, user_id=other_user_id, role="member")
        assert e.value.code == "member_exists"
        # A custom role by name, as the original allowed ([orgs] roles).
        await derp.auth.update_org_member(org_id=org.id, user_id=other_user_id, role="billing")

        removed = await derp.auth.remove_org_member(org_id=org.id, user_id=other_user_id)
        assert removed is True
        # "Returns False if not found or if removing the last owner": derp
        # tells the two apart with errors.
        with pytest.raises(DerpError) as e:
            await derp.auth.remove_org_member(org_id=org.id, user_id=other_user_id)
        assert (e.value.status, e.value.code) == (404, "not_found")
        with pytest.raises(DerpError) as e:
            await derp.auth.remove_org_member(org_id=org.id, user_id=user.id)
        assert (e.value.status, e.value.code) == (409, "last_owner")

        # set_active_org(session_id=..., org_id=...): derp takes the session's
        # access token (the session it names).
        new_tokens = await derp.auth.set_active_org(access_token=new_tokens.access_token, org_id=org.id)
        session = await derp.auth.authenticate({"authorization": f"Bearer {new_tokens.access_token}"})
        assert (session.org_id, session.org_role) == (org.id, "owner")

        orgs = await derp.auth.list_orgs(user_id=user.id)
        assert [o.org.id for o in orgs] == [org.id]

        # Protecting Routes
        app = FastAPI()
        app.state.derp_client = derp

        def get_derp(request: Request) -> DerpClient:
            return request.app.state.derp_client

        async def get_current_user(request: Request, derp: DerpClient = Depends(get_derp)) -> SessionInfo:
            session = await derp.auth.authenticate(request)
            if session is None:
                raise HTTPException(status_code=401)
            return session

        @app.get("/orders")
        async def list_orders(session: SessionInfo = Depends(get_current_user)):
            return {"user_id": session.user_id, "org_id": session.org_id}

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
            assert (await client.get("/orders")).status_code == 401
            res = await client.get("/orders", headers={"authorization": f"Bearer {new_tokens.access_token}"})
            assert res.status_code == 200 and res.json() == {"user_id": user.id, "org_id": org.id}
