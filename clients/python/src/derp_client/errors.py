"""derp's error shape, `{"error": {"code", "message", "request_id", "fields"?, "reasons"?}}`, as an exception."""

from __future__ import annotations

from typing import Any


class DerpError(Exception):
    """An error answer from derp, or a failure to reach it.

    `status` is the HTTP status (0 when derp could not be reached), `code` the
    stable snake_case code (`invalid_credentials`, `email_exists`,
    `weak_password`, ...; `network_error` when derp could not be reached,
    `invalid_token` for a token that fails local verification), `message`
    the human text, `fields` the per-field messages of an `invalid_request`,
    `reasons` those of a `weak_password`, `request_id` derp's request id and
    `retry_after` the seconds of a `rate_limited` answer.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: dict[str, str] | None = None,
        reasons: list[str] | None = None,
        request_id: str | None = None,
        retry_after: int | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.reasons = reasons or []
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body

    @classmethod
    def from_response(cls, status: int, body: Any, headers: Any = None) -> "DerpError":
        err = body.get("error") if isinstance(body, dict) else None
        retry = None
        if headers is not None and headers.get("retry-after"):
            try:
                retry = int(headers.get("retry-after"))
            except ValueError:
                retry = None
        if not isinstance(err, dict):
            return cls(status, "http_error", f"unexpected answer with status {status}", body=body, retry_after=retry)
        return cls(
            status,
            str(err.get("code", "http_error")),
            str(err.get("message", "")),
            fields=err.get("fields") if isinstance(err.get("fields"), dict) else None,
            reasons=err.get("reasons") if isinstance(err.get("reasons"), list) else None,
            request_id=err.get("request_id") or (headers.get("x-request-id") if headers is not None else None),
            retry_after=retry,
            body=body,
        )

    @property
    def enrollment_token(self) -> str | None:
        """With `code == "mfa_enrollment_required"` (derp's `[auth.native.mfa]
        required`): the token that `auth.enroll_totp` and `auth.verify_totp`
        take to enroll the user's first factor and finish the sign-in."""
        err = self.body.get("error") if isinstance(self.body, dict) else None
        token = err.get("enrollment_token") if isinstance(err, dict) else None
        return token if isinstance(token, str) else None

    def __repr__(self) -> str:
        return f"DerpError(status={self.status!r}, code={self.code!r}, message={self.message!r}, fields={self.fields!r})"


class WebhookVerificationError(Exception):
    """A webhook whose headers are missing, whose timestamp is out of tolerance, or whose signature does not match."""
