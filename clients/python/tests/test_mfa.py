"""Second factors through the client against a live derp: a sign-in that
answers `mfa_required`, finished with a TOTP or a recovery code, and a derp
that requires every user to enroll (`mfa_enrollment_required`). TOTP codes
are computed here (RFC 6238: HMAC-SHA1, 6 digits, 30 s)."""

import base64
import hashlib
import hmac
import struct
import tempfile
import time
from pathlib import Path

import pytest
from conftest import PASSWORD, DerpServer, new_email

from derp_client import AuthResult, DerpClient, DerpError, TotpEnrollment, TotpVerified


def totp(secret_b32: str, at: float) -> str:
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def test_totp_matches_the_rfc_6238_vector():
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp(secret, 59) == "287082"


async def enrolled(derp: DerpClient, email: str) -> tuple[TotpEnrollment, TotpVerified]:
    up = await derp.auth.sign_up(email=email, password=PASSWORD)
    pending = await derp.auth.enroll_totp(up.tokens.access_token, name="Phone")
    assert pending.otpauth_url.startswith("otpauth://totp/")
    done = await derp.auth.verify_totp(pending.factor_id, totp(pending.secret, time.time()), up.tokens.access_token)
    assert done.factor_id == pending.factor_id and len(done.recovery_codes) == 10
    assert done.result is None
    return pending, done


async def test_a_sign_in_with_a_factor_answers_mfa_required_then_a_code_finishes_it(derp, email):
    pending, done = await enrolled(derp, email)
    result = await derp.auth.sign_in_with_password(email, PASSWORD)
    assert isinstance(result, AuthResult)
    assert result.mfa_required and result.mfa_token
    assert result.user is None and result.tokens is None
    assert [f.id for f in result.factors] == [pending.factor_id]
    with pytest.raises(DerpError) as e:
        await derp.auth.complete_mfa(result.mfa_token, "000000")
    assert (e.value.status, e.value.code) == (401, "invalid_code")
    # The next time step's code: the current one was spent on enrollment.
    user, tokens = await derp.auth.complete_mfa(result.mfa_token, totp(pending.secret, time.time() + 30))
    assert user.email == email
    session = await derp.auth.verify_access_token(tokens.access_token)
    assert {"pwd", "otp", "mfa"} <= set(session.claims["amr"])
    # The mfa_token is single use.
    with pytest.raises(DerpError) as e:
        await derp.auth.complete_mfa(result.mfa_token, done.recovery_codes[0])
    assert e.value.code == "invalid_token"


async def test_a_recovery_code_finishes_a_sign_in_once(derp, email):
    _, done = await enrolled(derp, email)
    first = await derp.auth.sign_in_with_password(email, PASSWORD)
    result = await derp.auth.complete_mfa(first.mfa_token, done.recovery_codes[3])
    assert result.tokens is not None and not result.mfa_required
    again = await derp.auth.sign_in_with_password(email, PASSWORD)
    with pytest.raises(DerpError) as e:
        await derp.auth.complete_mfa(again.mfa_token, done.recovery_codes[3])
    assert e.value.code == "invalid_code"


@pytest.fixture(scope="module")
def derp_mfa_required():
    with tempfile.TemporaryDirectory() as tmp:
        server = DerpServer(Path(tmp), extra="[auth.native.mfa]\nrequired = true\n").start()
        try:
            yield server
        finally:
            server.stop()


async def test_a_derp_that_requires_mfa_makes_the_user_enroll_to_sign_in(derp_mfa_required):
    email = new_email("enroll")
    async with DerpClient(derp_mfa_required.url) as derp:
        up = await derp.auth.sign_up(email=email, password=PASSWORD)
        assert up.tokens is None and up.mfa_enrollment_required and up.enrollment_token
        with pytest.raises(DerpError) as e:
            await derp.auth.sign_in_with_password(email, PASSWORD)
        assert (e.value.status, e.value.code) == (403, "mfa_enrollment_required")
        token = e.value.enrollment_token
        assert token
        pending = await derp.auth.enroll_totp(enrollment_token=token)
        done = await derp.auth.verify_totp(pending.factor_id, totp(pending.secret, time.time()), enrollment_token=token)
        assert done.result is not None and done.result.user.email == email
        assert len(done.recovery_codes) == 10
        session = await derp.auth.verify_access_token(done.result.tokens.access_token)
        assert {"pwd", "otp", "mfa"} <= set(session.claims["amr"])
        # From now on, the usual second step.
        result = await derp.auth.sign_in_with_password(email, PASSWORD)
        assert result.mfa_required
