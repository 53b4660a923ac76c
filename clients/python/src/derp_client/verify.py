"""Local verification of access tokens: derp's JWKS (cached, refetched once
on an unknown `kid`, at most once per `refetch_interval`), or the HS256
secret. The algorithm is pinned to the key's own; `none`, HMAC with a public
key and every other switch are refused. Also the signed `X-Org-Context`
value of the Cognito and Clerk backends."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any, Callable

import httpx
import jwt

from .errors import DerpError
from .models import SessionInfo

# JWK key types and curves and the one algorithm each may verify.
_ASYMMETRIC = {"EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
_HMAC = {"HS256", "HS384", "HS512"}


def _invalid(message: str) -> DerpError:
    return DerpError(401, "invalid_token", message)


def _b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _jwk_algorithm(jwk: dict[str, Any]) -> str | None:
    """The one algorithm a JWK verifies: its `alg`, else what kty/crv imply."""
    if jwk.get("alg"):
        return str(jwk["alg"])
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "OKP" and crv == "Ed25519":
        return "EdDSA"
    if kty == "EC":
        return {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}.get(str(crv))
    if kty == "RSA":
        return "RS256"
    return None


class JwksCache:
    """Keys by `kid`. Refreshed when older than `max_age`, and once on an
    unknown `kid` unless the last fetch was under `refetch_interval` ago."""

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        max_age: float = 3600.0,
        refetch_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._http = http
        self.max_age = max_age
        self.refetch_interval = refetch_interval
        self._clock = clock
        self._keys: dict[str, tuple[str, Any]] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def _fetch(self) -> None:
        # Attempts, failed ones too, count for the refetch rate limit.
        self._attempted_at = self._clock()
        self.fetches += 1
        try:
            res = await self._http.get(self.url)
        except httpx.HTTPError as e:
            raise DerpError(0, "network_error", f"could not fetch the JWKS: {e}") from e
        if res.status_code != 200:
            raise DerpError(res.status_code, "upstream_error", "the JWKS endpoint did not answer 200")
        keys: dict[str, tuple[str, Any]] = {}
        for jwk in res.json().get("keys", []):
            alg = _jwk_algorithm(jwk)
            kid = jwk.get("kid")
            if not kid or alg not in _ASYMMETRIC or jwk.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(jwk, algorithm=alg).key
            except (jwt.PyJWTError, ValueError, KeyError, TypeError):
                continue
            keys[kid] = (alg, key)
        self._keys = keys
        self._fetched_at = self._clock()

    async def get(self, kid: str) -> tuple[str, Any] | None:
        async with self._lock:
            now = self._clock()
            # Never fetched (or the last fetch failed), or older than max_age.
            stale = self._fetched_at is None or now - self._fetched_at >= self.max_age
            if stale:
                await self._fetch()
            elif kid not in self._keys and (self._attempted_at is None or now - self._attempted_at >= self.refetch_interval):
                # Perhaps `derp keys rotate`: one refetch, rate limited.
                await self._fetch()
            return self._keys.get(kid)


class TokenVerifier:
    """Verifies an access token and returns its SessionInfo, or raises
    DerpError(401, "invalid_token")."""

    def __init__(
        self,
        *,
        issuer: str,
        jwks: JwksCache | None = None,
        secret: str | bytes | None = None,
        audience: str | None = None,
        backend: str = "native",
        client_id: str | None = None,
        authorized_parties: list[str] | None = None,
        leeway: float = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if backend not in ("native", "cognito", "clerk"):
            raise ValueError("backend must be native, cognito or clerk")
        if secret is None and jwks is None:
            raise ValueError("a JWKS or an HS256 secret is needed")
        self.issuer = issuer
        self.jwks = jwks
        self.secret = secret.encode() if isinstance(secret, str) else secret
        self.audience = audience
        self.backend = backend
        self.client_id = client_id
        self.authorized_parties = authorized_parties or []
        self.leeway = leeway
        self._clock = clock

    async def verify(self, token: str) -> SessionInfo:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise _invalid("not a JWT") from e
        alg = header.get("alg")
        if self.backend == "native" and header.get("typ") != "at+jwt":
            raise _invalid("not an access token (typ is not at+jwt)")
        if self.secret is not None:
            # The shared secret verifies HS256 and nothing else.
            if alg != "HS256":
                raise _invalid(f"algorithm {alg!r} refused: HS256 is configured")
            key: Any = self.secret
        else:
            if alg not in _ASYMMETRIC:
                raise _invalid(f"algorithm {alg!r} refused")
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise _invalid("no kid in the token header")
            assert self.jwks is not None
            found = await self.jwks.get(kid)
            if found is None:
                raise _invalid("unknown signing key")
            key_alg, key = found
            if alg != key_alg:
                raise _invalid(f"algorithm {alg!r} is not the key's ({key_alg})")
        required = ["exp", "iat", "sub", "iss"]
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={
                    "require": required,
                    "verify_aud": self.audience is not None,
                    "verify_iat": False,
                },
            )
        except jwt.ExpiredSignatureError as e:
            raise _invalid("the token has expired") from e
        except jwt.PyJWTError as e:
            raise _invalid(f"the token does not verify: {e}") from e
        return self._session(claims, token)

    def _session(self, claims: dict[str, Any], token: str) -> SessionInfo:
        if self.backend == "cognito":
            if claims.get("token_use") != "access":
                raise _invalid("not a Cognito access token")
            if self.client_id and claims.get("client_id", claims.get("aud")) != self.client_id:
                raise _invalid("token of another app client")
            groups = claims.get("cognito:groups") or []
            return SessionInfo(
                user_id=claims["sub"],
                session_id=claims.get("origin_jti") or claims.get("jti") or claims["sub"],
                role="admin" if "admin" in groups else "default",
                expires_at=int(claims["exp"]),
                email=claims.get("email"),
                claims=claims,
                access_token=token,
            )
        if self.backend == "clerk":
            if self.authorized_parties and claims.get("azp") not in self.authorized_parties:
                raise _invalid("azp is not an authorized party")
            # The org Clerk itself made active, if any (session token v2 `o`, v1 org_*).
            org = claims.get("o") if isinstance(claims.get("o"), dict) else {}
            org_id = org.get("id") or claims.get("org_id")
            org_role = org.get("rol") or claims.get("org_role")
            return SessionInfo(
                user_id=claims["sub"],
                session_id=claims.get("sid") or "",
                role="default",
                expires_at=int(claims["exp"]),
                org_id=org_id,
                org_role=org_role.removeprefix("org:") if isinstance(org_role, str) else None,
                email=claims.get("email"),
                claims=claims,
                access_token=token,
            )
        session_id = claims.get("sid") or claims.get("session_id")
        if not session_id:
            raise _invalid("no sid in the token")
        return SessionInfo(
            user_id=claims["sub"],
            session_id=session_id,
            role=claims.get("role") or "default",
            expires_at=int(claims["exp"]),
            org_id=claims.get("org_id"),
            org_role=claims.get("org_role"),
            email=claims.get("email"),
            claims=claims,
            access_token=token,
        )


class OrgContextVerifier:
    """The signed `X-Org-Context` value derp's Cognito and Clerk backends
    return from `set_active_org`:
    `oc1.<base64url(JSON {sub, sid, org_id, org_role, iat, exp})>.<base64url(HMAC-SHA256)>`,
    keyed with HKDF-SHA256(`[auth] org_context_secret`, salt "derp",
    info "derp/x-org-context/v1"). Bound to the user and the login session."""

    LEEWAY = 60
    MAX_LEN = 2048

    def __init__(self, secret: str | bytes, clock: Callable[[], float] = time.time) -> None:
        master = secret.encode() if isinstance(secret, str) else secret
        if len(master) < 32:
            raise ValueError("org_context_secret: at least 32 bytes")
        self._key = _hkdf_sha256(master, salt=b"derp", info=b"derp/x-org-context/v1", length=32)
        self._clock = clock

    def verify(self, value: str, sub: str, sid: str) -> dict[str, Any] | None:
        value = value.strip()
        if len(value) > self.MAX_LEN or value.count(".") != 2:
            return None
        signed_part, _, tag = value.rpartition(".")
        version, _, payload = signed_part.partition(".")
        if version != "oc1":
            return None
        try:
            got = _b64url_decode(tag)
            ctx = json.loads(_b64url_decode(payload))
        except (ValueError, json.JSONDecodeError):
            return None
        expected = hmac.new(self._key, signed_part.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, got) or not isinstance(ctx, dict):
            return None
        now = self._clock()
        try:
            fresh = ctx["exp"] > now and ctx["iat"] <= now + self.LEEWAY
        except (KeyError, TypeError):
            return None
        if fresh and ctx.get("sub") == sub and ctx.get("sid") == sid:
            return ctx
        return None


def _hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]
