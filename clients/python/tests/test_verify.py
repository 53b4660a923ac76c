"""`authenticate(request)` verifies access tokens locally: derp's JWKS
(cached; one rate-limited refetch on an unknown kid) or the HS256 secret."""

import base64
import json
import tempfile
import time
from pathlib import Path

import jwt
import pytest
from conftest import HS256_SECRET, PASSWORD, DerpServer, free_port, new_email

from derp_client import DerpClient, DerpError, SessionInfo


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict, dict, str]:
    h, p, s = token.split(".")
    pad = lambda x: x + "=" * (-len(x) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(h))), json.loads(base64.urlsafe_b64decode(pad(p))), s


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def signed_up(derp: DerpClient):
    email = new_email()
    result = await derp.auth.sign_up(email=email, password=PASSWORD)
    return email, result


async def test_valid_token_gives_the_session_without_calling_derp(derp):
    email, result = await signed_up(derp)
    session = await derp.auth.authenticate(bearer(result.tokens.access_token))
    assert isinstance(session, SessionInfo)
    assert session.user_id == result.user.id
    assert session.email == email and session.role == "default"
    assert session.session_id and session.org_id is None
    assert session.expires_at == result.tokens.expires_at
    # The same as derp's own answer.
    remote = await derp.auth.get_session(result.tokens.access_token)
    assert (remote.user_id, remote.session_id, remote.role, remote.expires_at) == (
        session.user_id, session.session_id, session.role, session.expires_at)
    fetches = derp.verifier.jwks.fetches
    for _ in range(5):
        assert await derp.auth.authenticate(bearer(result.tokens.access_token))
    assert derp.verifier.jwks.fetches == fetches, "keys are cached"


async def test_no_or_malformed_header_is_none(derp):
    assert await derp.auth.authenticate({}) is None
    assert await derp.auth.authenticate({"Authorization": "Basic abc"}) is None
    assert await derp.auth.authenticate({"Authorization": "Bearer not.a.jwt"}) is None
    assert await derp.auth.authenticate({"Authorization": "Bearer "}) is None


async def test_expired_token_is_refused(derp_server):
    async with DerpClient(derp_server.url) as fresh:
        _, result = await signed_up(fresh)
        token = result.tokens.access_token
        assert await fresh.auth.authenticate(bearer(token))
    # A verifier whose clock is 16 minutes ahead sees the 15-minute token expired.
    async with DerpClient(derp_server.url, leeway=-16 * 60) as later:
        assert await later.auth.authenticate(bearer(token)) is None
        with pytest.raises(DerpError) as e:
            await later.auth.verify_access_token(token)
        assert e.value.code == "invalid_token" and "expired" in e.value.message


async def test_tampered_token_is_refused(derp):
    _, result = await signed_up(derp)
    header, claims, sig = parts(result.tokens.access_token)
    claims["role"] = "admin"
    forged = ".".join([b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), sig])
    assert await derp.auth.authenticate(bearer(forged)) is None
    # Another signature on the genuine payload.
    h, p, s = result.tokens.access_token.split(".")
    flipped = s[:-2] + ("AA" if s[-2:] != "AA" else "BB")
    assert await derp.auth.authenticate(bearer(f"{h}.{p}.{flipped}")) is None


async def test_algorithm_is_pinned_to_the_key(derp):
    _, result = await signed_up(derp)
    header, claims, sig = parts(result.tokens.access_token)
    assert header["alg"] == "EdDSA" and header["typ"] == "at+jwt" and header["kid"]
    # alg "none"
    none = ".".join([b64(json.dumps({**header, "alg": "none"}).encode()), b64(json.dumps(claims).encode()), ""])
    assert await derp.auth.authenticate(bearer(none)) is None
    # The key's algorithm swapped in the header, signature kept.
    swapped = ".".join([b64(json.dumps({**header, "alg": "ES256"}).encode()), b64(json.dumps(claims).encode()), sig])
    assert await derp.auth.authenticate(bearer(swapped)) is None
    # HS256 keyed with the public key (the classic confusion).
    jwks = (await derp.http.get(f"{derp.base_url}/.well-known/jwks.json")).json()
    public = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    for secret in (public["x"].encode(), json.dumps(public).encode()):
        confused = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": header["kid"], "typ": "at+jwt"})
        assert await derp.auth.authenticate(bearer(confused)) is None


async def test_issuer_and_audience_are_checked(derp_server):
    async with DerpClient(derp_server.url) as derp:
        _, result = await signed_up(derp)
    token = result.tokens.access_token
    async with DerpClient(derp_server.url, issuer="https://someone-else.example") as other:
        assert await other.auth.authenticate(bearer(token)) is None
    async with DerpClient(derp_server.url, audience="my-app") as other:
        # derp has no audience configured: its tokens carry none.
        assert await other.auth.authenticate(bearer(token)) is None


async def test_unknown_kid_refetches_once_and_is_rate_limited(derp_server):
    async with DerpClient(derp_server.url, jwks_refetch_interval=60) as derp:
        _, result = await signed_up(derp)
        header, claims, sig = parts(result.tokens.access_token)
        assert await derp.auth.authenticate(bearer(result.tokens.access_token))
        assert derp.verifier.jwks.fetches == 1
        unknown = ".".join([b64(json.dumps({**header, "kid": "nope"}).encode()), b64(json.dumps(claims).encode()), sig])
        for _ in range(3):
            assert await derp.auth.authenticate(bearer(unknown)) is None
        assert derp.verifier.jwks.fetches == 1, "no refetch within the interval"
    async with DerpClient(derp_server.url, jwks_refetch_interval=0) as eager:
        assert await eager.auth.authenticate(bearer(result.tokens.access_token))
        assert await eager.auth.authenticate(bearer(unknown)) is None
        assert eager.verifier.jwks.fetches == 2, "one refetch for the unknown kid"


async def test_key_rotation_is_picked_up_on_the_unknown_kid():
    """`derp keys rotate` between two runs of derp on the same data: the
    client, which cached the old key, refetches once on the new kid; tokens
    of the old key still verify."""
    with tempfile.TemporaryDirectory() as tmp:
        server = DerpServer(Path(tmp)).start()
        try:
            async with DerpClient(server.url, jwks_refetch_interval=0) as derp:
                email, result = await signed_up(derp)
                old = result.tokens.access_token
                assert await derp.auth.authenticate(bearer(old))
                server.stop()
                server.cli("keys", "rotate")
                server.start()
                user, tokens = await derp.auth.sign_in_with_password(email, PASSWORD)
                assert parts(tokens.access_token)[0]["kid"] != parts(old)[0]["kid"]
                before = derp.verifier.jwks.fetches
                assert (await derp.auth.authenticate(bearer(tokens.access_token))).user_id == user.id
                assert derp.verifier.jwks.fetches == before + 1
                assert await derp.auth.authenticate(bearer(old)), "the retired key still verifies"
        finally:
            server.stop()


async def test_hs256_secret(derp_hs256):
    async with DerpClient(derp_hs256.url, jwt_secret=HS256_SECRET) as derp:
        # Confirmation is on here: an admin-made (confirmed) user signs in.
        email = new_email("hs")
        derp_hs256.cli("admin", "create", "--email", email, "--password", PASSWORD)
        user, tokens = await derp.auth.sign_in_with_password(email, PASSWORD)
        header, claims, _ = parts(tokens.access_token)
        assert header["alg"] == "HS256" and "kid" not in header
        session = await derp.auth.authenticate(bearer(tokens.access_token))
        assert session.user_id == user.id and session.role == "admin"

        # Valid signatures, wrong contents: expired, other issuer, not typ at+jwt.
        expired = jwt.encode({**claims, "exp": int(time.time()) - 5}, HS256_SECRET, algorithm="HS256", headers={"typ": "at+jwt"})
        assert await derp.auth.authenticate(bearer(expired)) is None
        with pytest.raises(DerpError):
            await derp.auth.get_session(expired)  # derp agrees
        other_iss = jwt.encode({**claims, "iss": "https://evil.example"}, HS256_SECRET, algorithm="HS256", headers={"typ": "at+jwt"})
        assert await derp.auth.authenticate(bearer(other_iss)) is None
        untyped = jwt.encode(claims, HS256_SECRET, algorithm="HS256")
        assert await derp.auth.authenticate(bearer(untyped)) is None
        # HS512 with the same secret is another algorithm: refused.
        hs512 = jwt.encode(claims, HS256_SECRET, algorithm="HS512", headers={"typ": "at+jwt"})
        assert await derp.auth.authenticate(bearer(hs512)) is None

    # The JWKS client cannot verify HS256 tokens (derp publishes no HMAC key).
    async with DerpClient(derp_hs256.url) as jwks_only:
        assert await jwks_only.auth.authenticate(bearer(tokens.access_token)) is None


async def test_unreachable_jwks_is_an_error_not_a_refusal(derp_server):
    async with DerpClient(derp_server.url) as derp:
        _, result = await signed_up(derp)
    dead = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    async with DerpClient(derp_server.url, jwks_url=dead) as blind:
        for _ in range(2):  # a failed fetch is retried on the next token
            with pytest.raises(DerpError) as e:
                await blind.auth.authenticate(bearer(result.tokens.access_token))
            assert e.value.code == "network_error"
        assert blind.verifier.jwks.fetches == 2
