"""The `.auth` calls against a live derp."""


import httpx
import pytest
from conftest import PASSWORD, browser_login, free_port, new_email

from derp_client import AuthResult, DerpClient, DerpError, Tokens, User


async def test_sign_up_then_sign_in(derp, email):
    result = await derp.auth.sign_up(email=email, password=PASSWORD, data={"plan": "pro"})
    assert isinstance(result, AuthResult)
    assert isinstance(result.user, User) and result.user.id and result.user.email == email
    assert result.user.data == {"plan": "pro"}
    assert isinstance(result.tokens, Tokens) and result.tokens.token_type == "bearer"
    assert result.confirmation_required is False

    user, tokens = await derp.auth.sign_in_with_password(email.upper(), PASSWORD)
    assert user.id == result.user.id
    assert tokens.access_token != result.tokens.access_token
    assert (await derp.auth.get_user(tokens.access_token)).email == email


async def test_refresh_rotates_and_reuse_kills_the_session(derp, email):
    # The test server has refresh_reuse_grace_seconds = 0: any reuse, however
    # soon, is reuse.
    first = (await derp.auth.sign_up(email=email, password=PASSWORD)).tokens
    second = await derp.auth.refresh_token(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert (await derp.auth.verify_access_token(second.access_token)).email == email
    with pytest.raises(DerpError) as e:
        await derp.auth.refresh_token(first.refresh_token)
    assert (e.value.status, e.value.code) == (401, "invalid_token")
    # Reuse revoked the whole login: the newest refresh token is dead too.
    with pytest.raises(DerpError) as e:
        await derp.auth.refresh_token(second.refresh_token)
    assert e.value.code == "invalid_token"


async def test_sign_out_revokes_refresh_but_access_tokens_verify_until_exp(derp, email):
    tokens = (await derp.auth.sign_up(email=email, password=PASSWORD)).tokens
    await derp.auth.sign_out(tokens.access_token)
    with pytest.raises(DerpError) as e:
        await derp.auth.refresh_token(tokens.refresh_token)
    assert e.value.code == "invalid_token"
    # Local verification is stateless, as documented.
    assert (await derp.auth.verify_access_token(tokens.access_token)).email == email


async def test_sign_out_everywhere(derp, email):
    a = (await derp.auth.sign_up(email=email, password=PASSWORD)).tokens
    b = (await derp.auth.sign_in_with_password(email, PASSWORD)).tokens
    await derp.auth.sign_out(b.access_token, scope="all")
    for t in (a, b):
        with pytest.raises(DerpError):
            await derp.auth.refresh_token(t.refresh_token)


async def test_errors_carry_status_code_message_and_fields(derp, email):
    await derp.auth.sign_up(email=email, password=PASSWORD)
    with pytest.raises(DerpError) as e:
        await derp.auth.sign_up(email=email, password=PASSWORD)
    assert (e.value.status, e.value.code) == (409, "email_exists")
    assert e.value.request_id

    with pytest.raises(DerpError) as e:
        await derp.auth.sign_in_with_password(email, "wrong password!")
    assert (e.value.status, e.value.code) == (401, "invalid_credentials")
    assert e.value.message

    with pytest.raises(DerpError) as e:
        await derp.auth.sign_up(email="not-an-email", password=PASSWORD)
    assert (e.value.status, e.value.code) == (400, "invalid_request")
    assert "email" in e.value.fields

    with pytest.raises(DerpError) as e:
        await derp.auth.sign_up(email=new_email(), password="short")
    assert (e.value.status, e.value.code) == (422, "weak_password")
    assert e.value.reasons

    with pytest.raises(DerpError) as e:
        await derp.auth.get_user("garbage")
    assert (e.value.status, e.value.code) == (401, "unauthenticated")


async def test_unreachable_derp_is_a_network_error():
    async with DerpClient(f"http://127.0.0.1:{free_port()}") as dead:
        with pytest.raises(DerpError) as e:
            await dead.auth.sign_in_with_password("a@example.com", PASSWORD)
    assert (e.value.status, e.value.code) == (0, "network_error")


async def test_magic_link(derp, derp_server):
    email = new_email("magic")
    await derp.auth.sign_in_with_magic_link(email=email, magic_link_url="http://app.test/callback/magic")
    token = derp_server.mail_token(email)
    user, tokens = await derp.auth.verify_magic_link(token)
    assert user.email == email and user.email_confirmed_at
    assert (await derp.auth.verify_access_token(tokens.access_token)).user_id == user.id
    with pytest.raises(DerpError) as e:
        await derp.auth.verify_magic_link(token)
    assert e.value.code == "invalid_token"


async def test_hosted_login_flow_with_pkce(derp, email):
    await derp.auth.sign_up(email=email, password=PASSWORD)
    login = derp.auth.build_login_url("http://app.test/callback")
    assert login.url.startswith(f"{derp.base_url}/login?redirect_to=")
    assert "code_challenge_method=S256" in login.url
    back = browser_login(login.url, email, PASSWORD)
    assert f"{back.scheme}://{back.host}{back.path}" == "http://app.test/callback"
    assert back.params["state"] == login.state
    code = back.params["code"]
    with pytest.raises(DerpError):
        # The wrong verifier is refused (and the code is spent)...
        await derp.auth.exchange_code(code, redirect_uri="http://app.test/callback", code_verifier="x" * 43)
    back = browser_login(derp.auth.build_login_url("http://app.test/callback").url, email, PASSWORD)
    # ...a verifier of another login too.
    with pytest.raises(DerpError):
        await derp.auth.exchange_code(back.params["code"], redirect_uri="http://app.test/callback", code_verifier=login.code_verifier)
    login = derp.auth.build_login_url("http://app.test/callback")
    back = browser_login(login.url, email, PASSWORD)
    user, tokens = await derp.auth.exchange_code(
        back.params["code"], redirect_uri="http://app.test/callback", code_verifier=login.code_verifier
    )
    assert user.email == email
    assert (await derp.auth.authenticate({"Authorization": f"Bearer {tokens.access_token}"})).email == email


async def test_oauth_authorization_url_starts_the_flow_in_the_browser(derp):
    url = derp.auth.get_oauth_authorization_url(
        "google", state="csrf123", redirect_to="http://app.test/callback", code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
    assert url.startswith(f"{derp.base_url}/oauth/google?")
    async with httpx.AsyncClient() as browser:
        res = await browser.get(url)
    assert res.status_code in (302, 303), res.text
    provider = httpx.URL(res.headers["location"])
    assert provider.host == "127.0.0.1" and provider.path == "/authorize"
    assert provider.params["client_id"] == "test-client"
    assert provider.params["code_challenge_method"] == "S256"
    assert "derp_oauth" in res.headers.get("set-cookie", "")


async def test_sign_in_with_oauth_errors(derp):
    with pytest.raises(DerpError) as e:
        await derp.auth.sign_in_with_oauth("google", "a-code")  # the provider does not answer
    assert (e.value.status, e.value.code) == (502, "upstream_error")
    with pytest.raises(DerpError) as e:
        await derp.auth.sign_in_with_oauth("nope", "a-code")
    assert (e.value.status, e.value.code) == (404, "feature_disabled")


async def test_confirmation_and_hs256(derp_hs256):
    from conftest import HS256_SECRET

    async with DerpClient(derp_hs256.url, jwt_secret=HS256_SECRET) as derp:
        email = new_email("confirm")
        result = await derp.auth.sign_up(email=email, password=PASSWORD, confirmation_url="http://app.test/callback/confirm")
        assert result.confirmation_required and result.tokens is None and result.user.id is None
        with pytest.raises(DerpError) as e:
            await derp.auth.sign_in_with_password(email, PASSWORD)
        assert (e.value.status, e.value.code) == (403, "email_not_confirmed")
        user, tokens = await derp.auth.confirm_email(derp_hs256.mail_token(email))
        assert user.email_confirmed_at
        session = await derp.auth.authenticate({"authorization": f"Bearer {tokens.access_token}"})
        assert session is not None and session.user_id == user.id and session.email == email
    async with DerpClient(derp_hs256.url, jwt_secret="another-secret-of-at-least-32-bytes!!") as other:
        assert await other.auth.authenticate({"authorization": f"Bearer {tokens.access_token}"}) is None


async def test_request_metadata_is_forwarded(derp, email):
    class Req:  # the parts of a Starlette request that are read
        headers = {"User-Agent": "Browser/1.0"}
        client = None

    await derp.auth.sign_up(email=email, password=PASSWORD)
    _, tokens = await derp.auth.sign_in_with_password(email, PASSWORD, request=Req())
    sessions = (await derp.request("GET", "/api/v1/auth/sessions", token=tokens.access_token)).json()
    current = next(s for s in sessions if s["current"])
    assert current["user_agent"] == "Browser/1.0"
