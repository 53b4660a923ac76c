"""`DerpClient`: derp's JSON API with the original library's method names
under `.auth`, and local verification of access tokens."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any, Mapping
from urllib.parse import quote, urlencode

import httpx

from .errors import DerpError
from .models import (
    AuthResult,
    HostedLogin,
    Member,
    Org,
    OrgMembership,
    SessionInfo,
    Tokens,
    TotpEnrollment,
    TotpVerified,
    User,
)
from .verify import JwksCache, OrgContextVerifier, TokenVerifier



def _token_of(access_token: str | SessionInfo | None) -> str:
    if isinstance(access_token, SessionInfo):
        if not access_token.access_token:
            raise ValueError("this SessionInfo carries no access token")
        return access_token.access_token
    if not access_token:
        raise ValueError("an access token is needed")
    return access_token


def _headers_of(request: Any) -> Mapping[str, str]:
    """Headers of a Starlette/FastAPI request, of anything with `.headers`,
    or a plain mapping."""
    if request is None:
        return {}
    headers = getattr(request, "headers", request)
    if isinstance(headers, Mapping):
        # Case-insensitive look-ups for plain dicts too.
        if isinstance(headers, dict):
            return {str(k).lower(): v for k, v in headers.items()}
        return headers
    raise TypeError("request must have .headers or be a mapping of headers")


def bearer_token(request: Any) -> str | None:
    """The token of an `Authorization: Bearer …` header, or None."""
    header = _headers_of(request).get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def pkce_pair() -> tuple[str, str]:
    """A random PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class DerpClient:
    """An async client for one derp server.

    `base_url` is where the app reaches derp. Access tokens are verified
    locally: against `jwks_url` (default `{base_url}/.well-known/jwks.json`)
    or, when `jwt_secret` is given (derp's `[auth.native.jwt] secret` with
    `algorithm = "HS256"`), with that secret. `issuer` defaults to
    `base_url` (derp's `public_url`); set it when they differ. `audience`
    must match derp's `[auth.native.jwt] audience` when one is configured.

    With `backend="cognito"` or `"clerk"`, set `jwks_url`, `issuer` (and
    `client_id` or `authorized_parties`) to the upstream's, and
    `org_context_secret` to derp's `[auth] org_context_secret` so that
    `authenticate` reads the `X-Org-Context` header locally.

    `service_key` (from `[admin] service_keys`) lets the org calls act as an
    admin when no user access token is given (`create_org(creator_id=…)`,
    `list_orgs(user_id=…)`).

    Use it as `async with DerpClient(...) as derp:` or call `aclose()`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        jwt_secret: str | bytes | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        jwks_url: str | None = None,
        backend: str = "native",
        client_id: str | None = None,
        authorized_parties: list[str] | None = None,
        org_context_secret: str | bytes | None = None,
        service_key: str | None = None,
        timeout: float = 10.0,
        http_client: httpx.AsyncClient | None = None,
        jwks_max_age: float = 3600.0,
        jwks_refetch_interval: float = 60.0,
        leeway: float = 0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._owns_http = http_client is None
        self.http = http_client or httpx.AsyncClient(timeout=timeout)
        self.service_key = service_key
        jwks = None
        if jwt_secret is None:
            jwks = JwksCache(
                jwks_url or f"{self.base_url}/.well-known/jwks.json",
                self.http,
                max_age=jwks_max_age,
                refetch_interval=jwks_refetch_interval,
            )
        self.verifier = TokenVerifier(
            issuer=issuer or self.base_url,
            jwks=jwks,
            secret=jwt_secret,
            audience=audience,
            backend=backend,
            client_id=client_id,
            authorized_parties=authorized_parties,
            leeway=leeway,
        )
        self.org_context = OrgContextVerifier(org_context_secret) if org_context_secret else None
        self.auth = AuthClient(self)

    async def __aenter__(self) -> "DerpClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One call to derp; a non-2xx answer raises DerpError."""
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        try:
            res = await self.http.request(
                method,
                f"{self.base_url}{path}",
                json=json,
                params={k: v for k, v in (params or {}).items() if v is not None} or None,
                headers=h,
            )
        except httpx.HTTPError as e:
            raise DerpError(0, "network_error", f"could not reach derp: {e}") from e
        if res.status_code >= 400:
            try:
                body = res.json()
            except ValueError:
                body = None
            raise DerpError.from_response(res.status_code, body, res.headers)
        return res


def _meta_headers(request: Any, user_agent: str | None, ip_address: str | None) -> dict[str, str]:
    """The end user's agent and address, forwarded to derp. derp believes
    `X-Forwarded-For` only from its `[server] trusted_proxies`."""
    h: dict[str, str] = {}
    if request is not None:
        headers = _headers_of(request)
        user_agent = user_agent or headers.get("user-agent")
        if ip_address is None:
            client = getattr(request, "client", None)
            ip_address = getattr(client, "host", None) if client is not None else None
    if user_agent:
        h["User-Agent"] = user_agent
    if ip_address:
        h["X-Forwarded-For"] = ip_address
    return h


def _body(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class AuthClient:
    """The original library's `derp.auth`, over derp's HTTP API."""

    def __init__(self, client: DerpClient) -> None:
        self._c = client

    # -- sign-up, sign-in, tokens -------------------------------------------

    async def sign_up(
        self,
        *,
        email: str,
        password: str,
        request: Any = None,
        confirmation_url: str | None = None,
        data: dict[str, Any] | None = None,
        user_agent: str | None = None,
        ip_address: str | None = None,
    ) -> AuthResult:
        """`result.user`, `result.tokens`; with confirmation on, `tokens` is
        None and `confirmation_required` True until the email is confirmed."""
        res = await self._c.request(
            "POST",
            "/api/v1/auth/sign-up",
            json=_body(email=email, password=password, confirmation_url=confirmation_url, data=data),
            headers=_meta_headers(request, user_agent, ip_address),
        )
        return AuthResult.from_dict(res.json())

    async def sign_in_with_password(
        self,
        email: str,
        password: str,
        *,
        request: Any = None,
        user_agent: str | None = None,
        ip_address: str | None = None,
    ) -> AuthResult:
        res = await self._c.request(
            "POST",
            "/api/v1/auth/sign-in",
            json={"email": email, "password": password},
            headers=_meta_headers(request, user_agent, ip_address),
        )
        return AuthResult.from_dict(res.json())

    # -- second factors -------------------------------------------------------

    async def complete_mfa(
        self,
        mfa_token: str,
        code: str,
        *,
        request: Any = None,
        user_agent: str | None = None,
        ip_address: str | None = None,
    ) -> AuthResult:
        """Finishes a sign-in that answered `mfa_required`: `code` is the
        6-digit code of the user's authenticator app or one of their recovery
        codes. A wrong code raises DerpError(401, "invalid_code"); after 5
        the `mfa_token` is dead (401 "invalid_token": sign in again)."""
        res = await self._c.request(
            "POST",
            "/api/v1/auth/mfa/challenge",
            json={"mfa_token": mfa_token, "code": code},
            headers=_meta_headers(request, user_agent, ip_address),
        )
        return AuthResult.from_dict(res.json())

    async def enroll_totp(
        self,
        access_token: str | SessionInfo | None = None,
        *,
        name: str | None = None,
        enrollment_token: str | None = None,
    ) -> TotpEnrollment:
        """Starts a TOTP factor for the signed-in user (a sign-in within the
        last 10 minutes), or, with `enrollment_token` (from a DerpError
        `mfa_enrollment_required` or a sign-up's result), for the user whose
        sign-in waits for it."""
        token = None if enrollment_token else _token_of(access_token)
        res = await self._c.request(
            "POST",
            "/api/v1/auth/mfa/totp/enroll",
            json=_body(name=name, enrollment_token=enrollment_token),
            token=token,
        )
        return TotpEnrollment.from_dict(res.json())

    async def verify_totp(
        self,
        factor_id: str,
        code: str,
        access_token: str | SessionInfo | None = None,
        *,
        enrollment_token: str | None = None,
    ) -> TotpVerified:
        """Activates the pending factor with its first code. With
        `enrollment_token`, `result` is the completed sign-in."""
        token = None if enrollment_token else _token_of(access_token)
        res = await self._c.request(
            "POST",
            "/api/v1/auth/mfa/totp/verify",
            json=_body(factor_id=factor_id, code=code, enrollment_token=enrollment_token),
            token=token,
        )
        return TotpVerified.from_dict(res.json())

    async def refresh_token(self, refresh_token: str) -> Tokens:
        """New tokens; the refresh token rotates (the old one dies)."""
        res = await self._c.request("POST", "/api/v1/auth/refresh", json={"refresh_token": refresh_token})
        return Tokens.from_dict(res.json()["tokens"])

    async def sign_out(self, access_token: str | SessionInfo, *, scope: str = "session") -> None:
        """Revokes the refresh tokens of this login (`scope="session"`) or of
        every login of the user (`scope="all"`). Access tokens already issued
        stay valid until they expire."""
        await self._c.request("POST", "/api/v1/auth/sign-out", json={"scope": scope}, token=_token_of(access_token))

    async def confirm_email(self, token: str) -> AuthResult:
        res = await self._c.request("POST", "/api/v1/auth/confirm", json={"token": token})
        return AuthResult.from_dict(res.json())

    async def get_user(self, access_token: str | SessionInfo) -> User:
        res = await self._c.request("GET", "/api/v1/auth/user", token=_token_of(access_token))
        return User.from_dict(res.json())

    # -- authenticate --------------------------------------------------------

    async def verify_access_token(self, token: str, *, org_context: str | None = None) -> SessionInfo:
        """Verifies locally; raises DerpError(401, "invalid_token")."""
        session = await self._c.verifier.verify(token)
        # As derp does: the header counts only when the token names no org.
        if org_context and session.org_id is None and self._c.org_context is not None and self._c.verifier.backend != "native":
            ctx = self._c.org_context.verify(org_context, session.user_id, session.session_id)
            if ctx is not None:
                session.org_id = ctx["org_id"]
                session.org_role = ctx["org_role"]
        return session

    async def authenticate(self, request: Any) -> SessionInfo | None:
        """The original `authenticate(request)`: the SessionInfo of the
        request's bearer token (Clerk: or its `__session` cookie), verified
        locally with no call to derp once the keys are cached; None when no
        valid token is present. With Cognito or Clerk, a valid
        `X-Org-Context` header fills `org_id` and `org_role`."""
        headers = _headers_of(request)
        token = bearer_token(headers)
        if token is None and self._c.verifier.backend == "clerk":
            cookies = getattr(request, "cookies", None) or {}
            token = cookies.get("__session")
        if not token:
            return None
        try:
            return await self.verify_access_token(token, org_context=headers.get("x-org-context"))
        except DerpError as e:
            if e.code == "invalid_token":
                return None
            raise

    async def get_session(self, access_token: str | SessionInfo, *, org_context: str | None = None) -> SessionInfo:
        """derp's own answer (`GET /session`), for when local verification
        is not wanted."""
        headers = {"X-Org-Context": org_context} if org_context else None
        token = _token_of(access_token)
        res = await self._c.request("GET", "/api/v1/auth/session", token=token, headers=headers)
        return SessionInfo.from_dict(res.json(), access_token=token)

    # -- OAuth and the hosted pages -----------------------------------------

    def get_oauth_authorization_url(
        self,
        provider: str,
        state: str | None = None,
        *,
        redirect_to: str | None = None,
        code_challenge: str | None = None,
    ) -> str:
        """Where to send the browser to sign in with `provider`.

        This is derp's `/oauth/{provider}` start: derp makes the provider's
        state, PKCE and nonce, keeps them in a cookie of the browser, and,
        after the provider, redirects to `redirect_to?code=…&state=…` (an
        allow-listed URL). Exchange that code with `exchange_code`. Made
        locally, without a request (like the original, not awaited)."""
        q = _body(redirect_to=redirect_to, state=state, code_challenge=code_challenge)
        if code_challenge:
            q["code_challenge_method"] = "S256"
        url = f"{self._c.base_url}/oauth/{quote(provider, safe='')}"
        return f"{url}?{urlencode(q)}" if q else url

    async def sign_in_with_oauth(
        self,
        provider: str,
        code: str,
        *,
        state: str | None = None,
        code_verifier: str | None = None,
        redirect_uri: str | None = None,
    ) -> AuthResult:
        """Signs in with a code *from the provider*, for apps that ran the
        browser leg themselves (`POST /oauth/{provider}/sign-in`). A code
        from derp's redirect (after `get_oauth_authorization_url` or the
        hosted pages) goes to `exchange_code` instead."""
        res = await self._c.request(
            "POST",
            f"/api/v1/auth/oauth/{quote(provider, safe='')}/sign-in",
            json=_body(code=code, state=state, code_verifier=code_verifier, redirect_uri=redirect_uri),
        )
        return AuthResult.from_dict(res.json())

    def build_login_url(self, redirect_to: str, *, page: str = "login") -> HostedLogin:
        """The hosted pages' URL with a random `state` and a PKCE (S256)
        challenge. Keep `state` and `code_verifier` for the callback."""
        state = secrets.token_urlsafe(24)
        verifier, challenge = pkce_pair()
        q = urlencode(
            {"redirect_to": redirect_to, "state": state, "code_challenge": challenge, "code_challenge_method": "S256"}
        )
        return HostedLogin(url=f"{self._c.base_url}/{page.strip('/')}?{q}", state=state, code_verifier=verifier)

    async def exchange_code(self, code: str, *, redirect_uri: str, code_verifier: str | None = None) -> AuthResult:
        """Exchanges the code derp put on the app's redirect URL
        (`POST /api/v1/auth/token`, single use, 60 s)."""
        res = await self._c.request(
            "POST",
            "/api/v1/auth/token",
            json=_body(grant_type="authorization_code", code=code, code_verifier=code_verifier, redirect_uri=redirect_uri),
        )
        return AuthResult.from_dict(res.json())

    # -- magic link, recovery --------------------------------------------------

    async def sign_in_with_magic_link(self, *, email: str, magic_link_url: str | None = None) -> None:
        """Mails a sign-in link (`magic_link_url?token=…`). derp answers the
        same whether or not the email is known."""
        await self._c.request("POST", "/api/v1/auth/magic-link", json=_body(email=email, magic_link_url=magic_link_url))

    async def verify_magic_link(self, token: str) -> AuthResult:
        """`user, tokens = await derp.auth.verify_magic_link(token)`; single use."""
        res = await self._c.request("POST", "/api/v1/auth/magic-link/verify", json={"token": token})
        return AuthResult.from_dict(res.json())

    async def request_password_recovery(self, *, email: str, reset_url: str | None = None) -> None:
        await self._c.request("POST", "/api/v1/auth/password/recover", json=_body(email=email, reset_url=reset_url))

    async def reset_password(self, token: str, password: str) -> AuthResult:
        res = await self._c.request("POST", "/api/v1/auth/password/reset", json={"token": token, "password": password})
        return AuthResult.from_dict(res.json())

    # -- organizations ---------------------------------------------------------
    # Each call acts as the user whose `access_token` is given (a string or
    # the SessionInfo from `authenticate`), with that user's rights; without
    # one, as an admin through `/api/v1/admin` with the client's service key.

    def _admin_key(self, what: str) -> str:
        if not self._c.service_key:
            raise ValueError(f"{what}: pass access_token=, or configure DerpClient(service_key=...)")
        return self._c.service_key

    async def create_org(
        self,
        *,
        name: str,
        slug: str,
        access_token: str | SessionInfo | None = None,
        creator_id: str | None = None,
    ) -> Org:
        """The caller (or, with the service key, `creator_id`) becomes the
        owner. DerpError `org_exists` (409) when the slug is taken."""
        if access_token is not None:
            res = await self._c.request("POST", "/api/v1/orgs", json={"name": name, "slug": slug}, token=_token_of(access_token))
        else:
            if not creator_id:
                raise ValueError("create_org: pass access_token= or creator_id=")
            res = await self._c.request(
                "POST",
                "/api/v1/admin/orgs",
                json={"name": name, "slug": slug, "owner_id": creator_id},
                token=self._admin_key("create_org"),
            )
        return Org.from_dict(res.json())

    async def get_org(self, org_id: str, *, access_token: str | SessionInfo) -> Org:
        """By id or slug; 404 for non-members too."""
        res = await self._c.request("GET", f"/api/v1/orgs/{quote(org_id, safe='')}", token=_token_of(access_token))
        return Org.from_dict(res.json())

    async def list_orgs(
        self,
        *,
        access_token: str | SessionInfo | None = None,
        user_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> list[OrgMembership]:
        """The orgs of the caller (or, with the service key, of `user_id`),
        each with the user's role."""
        if access_token is not None:
            res = await self._c.request(
                "GET", "/api/v1/orgs", params={"limit": limit, "cursor": cursor}, token=_token_of(access_token)
            )
            return [OrgMembership.from_dict(x) for x in res.json()]
        if not user_id:
            raise ValueError("list_orgs: pass access_token= or user_id=")
        res = await self._c.request(
            "GET", f"/api/v1/admin/users/{quote(user_id, safe='')}", token=self._admin_key("list_orgs")
        )
        return [OrgMembership.from_dict(x) for x in res.json().get("orgs") or []]

    async def list_org_members(self, org_id: str, *, access_token: str | SessionInfo) -> list[Member]:
        res = await self._c.request("GET", f"/api/v1/orgs/{quote(org_id, safe='')}/members", token=_token_of(access_token))
        return [Member.from_dict(x) for x in res.json()]

    def _members_path(self, org_id: str, access_token: Any, what: str) -> tuple[str, str]:
        if access_token is not None:
            return f"/api/v1/orgs/{quote(org_id, safe='')}/members", _token_of(access_token)
        return f"/api/v1/admin/orgs/{quote(org_id, safe='')}/members", self._admin_key(what)

    async def add_org_member(
        self,
        *,
        org_id: str,
        user_id: str | None = None,
        email: str | None = None,
        role: str = "member",
        access_token: str | SessionInfo | None = None,
    ) -> Member:
        """Adds a user (by id or email). DerpError `member_exists` (409) when
        already a member; only an owner may grant `owner`."""
        if not user_id and not email:
            raise ValueError("add_org_member: pass user_id= or email=")
        path, token = self._members_path(org_id, access_token, "add_org_member")
        res = await self._c.request("POST", path, json=_body(user_id=user_id, email=email, role=role), token=token)
        return Member.from_dict(res.json())

    async def update_org_member(
        self, *, org_id: str, user_id: str, role: str, access_token: str | SessionInfo | None = None
    ) -> Member:
        path, token = self._members_path(org_id, access_token, "update_org_member")
        res = await self._c.request("PATCH", f"{path}/{quote(user_id, safe='')}", json={"role": role}, token=token)
        return Member.from_dict(res.json())

    async def remove_org_member(
        self, *, org_id: str, user_id: str, access_token: str | SessionInfo | None = None
    ) -> bool:
        """True when removed. Where the original returned False, derp tells
        the two cases apart: DerpError `not_found` (404) or `last_owner` (409)."""
        path, token = self._members_path(org_id, access_token, "remove_org_member")
        await self._c.request("DELETE", f"{path}/{quote(user_id, safe='')}", token=token)
        return True

    async def set_active_org(self, *, access_token: str | SessionInfo, org_id: str | None) -> Tokens:
        """Makes `org_id` (or no org, with None) the session's active org.
        Native: new tokens whose access token carries `org_id`/`org_role`
        (the refresh token rotates). Cognito/Clerk: `tokens.access_token` is
        the value of the `X-Org-Context` header."""
        res = await self._c.request(
            "POST", "/api/v1/auth/active-org", json={"org_id": org_id}, token=_token_of(access_token)
        )
        return Tokens.from_dict(res.json()["tokens"])
