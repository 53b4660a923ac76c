"""Typed results. Every model keeps the JSON it came from in `raw`, so
fields that derp adds later are not lost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator


@dataclass
class User:
    """`{id, email, email_confirmed_at, role, disabled, created_at, last_sign_in_at, data}`.

    After a sign-up that needs confirmation derp answers only the email: the
    other fields are then None."""

    email: str
    id: str | None = None
    email_confirmed_at: str | None = None
    role: str = "default"
    disabled: bool = False
    created_at: str | None = None
    last_sign_in_at: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "User":
        return cls(
            email=d.get("email", ""),
            id=d.get("id"),
            email_confirmed_at=d.get("email_confirmed_at"),
            role=d.get("role") or "default",
            disabled=bool(d.get("disabled", False)),
            created_at=d.get("created_at"),
            last_sign_in_at=d.get("last_sign_in_at"),
            data=d.get("data") or {},
            raw=d,
        )


@dataclass
class Tokens:
    """A token pair. `expires_at` is the access token's `exp` (epoch seconds).

    After `set_active_org` with Cognito or Clerk, `access_token` is the
    signed value for the `X-Org-Context` header instead."""

    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = 0
    expires_at: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Tokens":
        return cls(
            access_token=d.get("access_token", ""),
            refresh_token=d.get("refresh_token", ""),
            token_type=d.get("token_type", "bearer"),
            expires_in=int(d.get("expires_in") or 0),
            expires_at=int(d.get("expires_at") or 0),
            raw=d,
        )


@dataclass
class Factor:
    id: str
    type: str


@dataclass
class AuthResult:
    """`{user, tokens}` of a sign-up, sign-in, magic link, OAuth or code exchange.

    Unpacks like the original library's tuples: `user, tokens = await ...`.
    `tokens` is None when `confirmation_required` (sign-up with confirmation
    on), when `mfa_required` (the user has a second factor: finish with
    `auth.complete_mfa(result.mfa_token, code)`), or when
    `mfa_enrollment_required` (a sign-up on a derp that requires a second
    factor: enroll one with `enrollment_token`)."""

    user: User | None
    tokens: Tokens | None
    confirmation_required: bool = False
    mfa_required: bool = False
    mfa_token: str | None = None
    factors: list[Factor] = field(default_factory=list)
    mfa_enrollment_required: bool = False
    enrollment_token: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __iter__(self) -> Iterator[Any]:
        yield self.user
        yield self.tokens

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AuthResult":
        return cls(
            user=User.from_dict(d["user"]) if d.get("user") else None,
            tokens=Tokens.from_dict(d["tokens"]) if d.get("tokens") else None,
            confirmation_required=bool(d.get("confirmation_required", False)),
            mfa_required=bool(d.get("mfa_required", False)),
            mfa_token=d.get("mfa_token"),
            factors=[Factor(id=f.get("id", ""), type=f.get("type", "")) for f in d.get("factors") or []],
            mfa_enrollment_required=bool(d.get("mfa_enrollment_required", False)),
            enrollment_token=d.get("enrollment_token"),
            raw=d,
        )


@dataclass
class TotpEnrollment:
    """A pending TOTP factor: show `otpauth_url` as a QR code (or `secret`
    as text), then confirm it with `auth.verify_totp(factor_id, code)`."""

    factor_id: str
    secret: str
    otpauth_url: str

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TotpEnrollment":
        return cls(factor_id=d["factor_id"], secret=d.get("secret", ""), otpauth_url=d.get("otpauth_url", ""))


@dataclass
class TotpVerified:
    """An active factor and its recovery codes (shown once). With an
    enrollment token, `result` is the sign-in it completed."""

    factor_id: str
    recovery_codes: list[str]
    result: AuthResult | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TotpVerified":
        return cls(
            factor_id=(d.get("factor") or {}).get("id", ""),
            recovery_codes=list(d.get("recovery_codes") or []),
            result=AuthResult.from_dict(d) if d.get("tokens") else None,
            raw=d,
        )


@dataclass
class SessionInfo:
    """The original library's `SessionInfo`, as derp's `GET /session` answers it.

    From local verification, `claims` holds the verified claims and
    `access_token` the token itself (handy to call derp on the user's
    behalf: `derp.auth.create_org(..., access_token=session)`)."""

    user_id: str
    session_id: str
    role: str = "default"
    expires_at: int = 0
    org_id: str | None = None
    org_role: str | None = None
    email: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    access_token: str | None = field(default=None, repr=False, compare=False)

    @property
    def metadata(self) -> dict[str, Any]:
        """The non-standard claims, as the original library's `metadata`."""
        standard = {"sub", "sid", "session_id", "iat", "exp", "nbf", "jti", "iss", "aud", "typ"}
        return {k: v for k, v in self.claims.items() if k not in standard}

    @classmethod
    def from_dict(cls, d: dict[str, Any], access_token: str | None = None) -> "SessionInfo":
        return cls(
            user_id=d["user_id"],
            session_id=d.get("session_id", ""),
            role=d.get("role") or "default",
            expires_at=int(d.get("expires_at") or 0),
            org_id=d.get("org_id"),
            org_role=d.get("org_role"),
            email=d.get("email"),
            claims=d,
            access_token=access_token,
        )


@dataclass
class Org:
    id: str
    name: str
    slug: str
    created_at: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Org":
        return cls(id=d["id"], name=d.get("name", ""), slug=d.get("slug", ""), created_at=d.get("created_at"), raw=d)


@dataclass
class OrgMembership:
    """One entry of `list_orgs`: the org and the caller's role in it."""

    org: Org
    role: str

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "OrgMembership":
        if "org" in d:
            return cls(org=Org.from_dict(d["org"]), role=d.get("role", ""))
        # Flat shape ({id, name, slug, role, ...}), as the admin user view lists orgs.
        return cls(org=Org.from_dict(d), role=d.get("role", ""))


@dataclass
class Member:
    user_id: str
    email: str | None
    role: str
    joined_at: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Member":
        return cls(user_id=d["user_id"], email=d.get("email"), role=d.get("role", ""), joined_at=d.get("joined_at"), raw=d)


@dataclass
class HostedLogin:
    """What `build_login_url` made: send the browser to `url`, keep `state`
    and `code_verifier` in the app's session for the callback."""

    url: str
    state: str
    code_verifier: str
