"""FastAPI dependencies: `current_user`, `require_role(...)`,
`require_org_role(...)`.

The client is looked up at `request.app.state.derp_client` (the original
guide's `get_derp`):

    app.state.derp_client = DerpClient("https://auth.example.com")

    @app.get("/orders")
    async def orders(session: SessionInfo = Depends(current_user)): ...

    @app.delete("/admin/thing", dependencies=[Depends(require_role("admin"))])
    ...
"""

from __future__ import annotations

from typing import Awaitable, Callable

from fastapi import Depends, HTTPException, Request

from .client import DerpClient
from .errors import DerpError
from .models import SessionInfo

ORG_ROLES = ("member", "admin", "owner")


def get_derp(request: Request) -> DerpClient:
    client = getattr(request.app.state, "derp_client", None)
    if client is None:
        raise RuntimeError("set app.state.derp_client = DerpClient(...) before using derp_client.fastapi")
    return client


async def optional_user(request: Request, derp: DerpClient = Depends(get_derp)) -> SessionInfo | None:
    """The SessionInfo, or None without a valid token. 503 when derp's keys
    cannot be fetched (the token can then be neither accepted nor refused)."""
    try:
        return await derp.auth.authenticate(request)
    except DerpError as e:
        raise HTTPException(status_code=503, detail="the auth server's keys are unavailable") from e


async def current_user(session: SessionInfo | None = Depends(optional_user)) -> SessionInfo:
    """The SessionInfo of a valid bearer token; 401 otherwise."""
    if session is None:
        raise HTTPException(status_code=401, detail="not signed in", headers={"WWW-Authenticate": "Bearer"})
    return session


def require_role(*roles: str) -> Callable[..., Awaitable[SessionInfo]]:
    """The user's global role (`role` claim) must be one of `roles`; 403 otherwise."""
    if not roles:
        raise ValueError("require_role needs at least one role")

    async def dependency(session: SessionInfo = Depends(current_user)) -> SessionInfo:
        if session.role not in roles:
            raise HTTPException(status_code=403, detail="forbidden")
        return session

    return dependency


def require_org_role(minimum: str = "member", *, org_param: str | None = None) -> Callable[..., Awaitable[SessionInfo]]:
    """An active org (`org_id`) in which the user has at least `minimum`
    (`owner > admin > member`; a custom role, such as `billing` from derp's
    `[orgs] roles`, counts as `member`); 403 otherwise. A custom role as
    `minimum` needs exactly that role. With `org_param`, the active org must
    also be the one named by that path parameter (its id)."""
    if not minimum:
        raise ValueError("minimum must name a role")

    def rank(role: str) -> int:
        return ORG_ROLES.index(role) if role in ORG_ROLES else 0

    async def dependency(request: Request, session: SessionInfo = Depends(current_user)) -> SessionInfo:
        if not session.org_id or not session.org_role:
            raise HTTPException(status_code=403, detail="no active organization")
        if minimum in ORG_ROLES:
            if rank(session.org_role) < ORG_ROLES.index(minimum):
                raise HTTPException(status_code=403, detail=f"needs the org role {minimum} or higher")
        elif session.org_role != minimum:
            raise HTTPException(status_code=403, detail=f"needs the org role {minimum}")
        if org_param is not None and request.path_params.get(org_param) != session.org_id:
            raise HTTPException(status_code=403, detail="another organization is active")
        return session

    return dependency


__all__ = ["current_user", "get_derp", "optional_user", "require_org_role", "require_role"]
