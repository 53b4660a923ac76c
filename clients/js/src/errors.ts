/** derp's error shape, `{"error": {"code", "message", "request_id", "fields"?, "reasons"?}}`, as an Error. */
export class DerpError extends Error {
  /** HTTP status; 0 when derp could not be reached. */
  readonly status: number;
  /** derp's snake_case code (`invalid_credentials`, `email_exists`, …), `network_error`, or `invalid_token` for a token that fails local verification. */
  readonly code: string;
  /** Per-field messages of an `invalid_request`. */
  readonly fields: Record<string, string>;
  /** Reasons of a `weak_password`. */
  readonly reasons: string[];
  readonly requestId?: string;
  /** Seconds to wait after a `rate_limited` answer. */
  readonly retryAfter?: number;
  /** With `mfa_enrollment_required`: the token `auth.enrollTotp` and `auth.verifyTotp` take to enroll the first factor and finish the sign-in. */
  readonly enrollmentToken?: string;

  constructor(
    status: number,
    code: string,
    message: string,
    extra: {
      fields?: Record<string, string>;
      reasons?: string[];
      requestId?: string;
      retryAfter?: number;
      enrollmentToken?: string;
      cause?: unknown;
    } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = "DerpError";
    this.status = status;
    this.code = code;
    this.fields = extra.fields ?? {};
    this.reasons = extra.reasons ?? [];
    this.requestId = extra.requestId;
    this.retryAfter = extra.retryAfter;
    this.enrollmentToken = extra.enrollmentToken;
  }

  static fromResponse(status: number, body: unknown, headers?: Headers): DerpError {
    const retry = headers?.get("retry-after");
    const retryAfter = retry ? Number.parseInt(retry, 10) : undefined;
    const err = (body as { error?: Record<string, unknown> } | null)?.error;
    if (!err || typeof err !== "object") {
      return new DerpError(status, "http_error", `unexpected answer with status ${status}`, { retryAfter });
    }
    return new DerpError(status, String(err.code ?? "http_error"), String(err.message ?? ""), {
      fields: (err.fields as Record<string, string> | undefined) ?? undefined,
      reasons: Array.isArray(err.reasons) ? (err.reasons as string[]) : undefined,
      requestId: (err.request_id as string | undefined) ?? headers?.get("x-request-id") ?? undefined,
      retryAfter,
      enrollmentToken: typeof err.enrollment_token === "string" ? err.enrollment_token : undefined,
    });
  }
}

/** A webhook whose headers are missing, whose timestamp is out of tolerance, or whose signature does not match. */
export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WebhookVerificationError";
  }
}
