"""derp-client: an async client for derp, the self-hosted auth server."""

from .client import AuthClient, DerpClient, bearer_token, pkce_pair
from .errors import DerpError, WebhookVerificationError
from .models import (
    AuthResult,
    Factor,
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
from .webhooks import sign_webhook, verify_webhook

__version__ = "0.1.0"

__all__ = [
    "AuthClient",
    "AuthResult",
    "DerpClient",
    "DerpError",
    "Factor",
    "HostedLogin",
    "JwksCache",
    "Member",
    "Org",
    "OrgContextVerifier",
    "OrgMembership",
    "SessionInfo",
    "Tokens",
    "TokenVerifier",
    "TotpEnrollment",
    "TotpVerified",
    "User",
    "WebhookVerificationError",
    "bearer_token",
    "pkce_pair",
    "sign_webhook",
    "verify_webhook",
]
