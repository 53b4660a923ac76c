"""A FastAPI app whose routes are protected by derp's access tokens.

The original guide's "Protecting Routes", made real: the backend verifies
derp's JWTs itself, without calling derp for each request:

- against derp's published keys (JWKS): fetched once and cached; an unknown
  `kid` (after `derp keys rotate`) triggers one refetch;
- or, when derp is configured like the original library
  (`[auth.native.jwt] secret = ...`, `algorithm = "HS256"`), with that
  same secret in DERP_JWT_SECRET. derp publishes no key for HS256, so the
  JWKS cannot verify those tokens.

    DERP_URL=http://127.0.0.1:8080 uvicorn app:app
    DERP_URL=http://127.0.0.1:8080 DERP_JWT_SECRET=... uvicorn app:app

The client library in clients/python (`derp_client.fastapi`) packages the
same checks as FastAPI dependencies.
"""

import os
from dataclasses import dataclass

import jwt
from fastapi import Depends, FastAPI, HTTPException, Request

DERP_URL = os.environ.get("DERP_URL", "http://127.0.0.1:8080").rstrip("/")
# The issuer is derp's public_url unless [auth.native.jwt] issuer says otherwise.
DERP_ISSUER = os.environ.get("DERP_ISSUER", DERP_URL)
DERP_AUDIENCE = os.environ.get("DERP_AUDIENCE")  # set when derp has `audience`
# derp's [auth.native.jwt] secret, when it signs with HS256.
DERP_JWT_SECRET = os.environ.get("DERP_JWT_SECRET") or None

jwks = jwt.PyJWKClient(f"{DERP_URL}/.well-known/jwks.json", cache_keys=True, lifespan=300)
app = FastAPI()


@dataclass
class SessionInfo:
    """What derp's GET /api/v1/auth/session returns, read from the token."""

    user_id: str
    session_id: str
    role: str
    expires_at: int
    email: str | None = None
    org_id: str | None = None
    org_role: str | None = None


def authenticate(request: Request) -> SessionInfo | None:
    """The seed's `authenticate(request)`: None when no valid token is present."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        if jwt.get_unverified_header(token).get("typ") != "at+jwt":
            return None
        if DERP_JWT_SECRET is not None:
            # The shared secret verifies HS256 and nothing else.
            key, algorithms = DERP_JWT_SECRET, ["HS256"]
        else:
            signing_key = jwks.get_signing_key_from_jwt(token)
            # Pin the algorithm to the key's own: never "none", never HS256 here.
            key, algorithms = signing_key, [signing_key.algorithm_name]
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            issuer=DERP_ISSUER,
            audience=DERP_AUDIENCE,
            options={"require": ["exp", "iat", "sub", "sid", "iss"], "verify_aud": DERP_AUDIENCE is not None},
        )
    except jwt.PyJWTError:
        return None
    return SessionInfo(
        user_id=claims["sub"],
        session_id=claims["sid"],
        role=claims.get("role", "default"),
        expires_at=claims["exp"],
        email=claims.get("email"),
        org_id=claims.get("org_id"),
        org_role=claims.get("org_role"),
    )


def get_current_user(request: Request) -> SessionInfo:
    session = authenticate(request)
    if session is None:
        raise HTTPException(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    return session


@app.get("/orders")
async def list_orders(session: SessionInfo = Depends(get_current_user)):
    return {"user_id": session.user_id, "email": session.email, "orders": []}
