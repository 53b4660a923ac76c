/** The JSON shapes of derp's API (API.md), field names as on the wire. */

export interface User {
  id: string;
  email: string;
  email_confirmed_at: string | null;
  role: string;
  disabled: boolean;
  created_at: string;
  last_sign_in_at: string | null;
  data: Record<string, unknown>;
}

export interface Tokens {
  access_token: string;
  refresh_token: string;
  token_type: "bearer";
  expires_in: number;
  /** The access token's `exp`, epoch seconds. */
  expires_at: number;
}

/**
 * `{user, tokens}`. After a sign-up that needs confirmation, `user` is `{email}` and `tokens` null.
 * With a second factor, both are null, `mfa_required` is true and `mfa_token` is set: finish with
 * `auth.completeMfa(mfa_token, code)`. A sign-up on a derp that requires a second factor answers
 * `mfa_enrollment_required` with `enrollment_token` (enroll with `enrollTotp`/`verifyTotp`).
 */
export interface AuthResult {
  user: User | null;
  tokens: Tokens | null;
  confirmation_required?: boolean;
  mfa_required?: boolean;
  mfa_token?: string;
  factors?: { id: string; type: string }[];
  mfa_enrollment_required?: boolean;
  enrollment_token?: string;
}

/** A pending TOTP factor: show `otpauth_url` as a QR code (or `secret` as text), then `verifyTotp`. */
export interface TotpEnrollment {
  factor_id: string;
  secret: string;
  otpauth_url: string;
}

/** An active factor and its recovery codes (shown once); with an enrollment token, also the sign-in it completed. */
export interface TotpVerified {
  factor: { id: string; type: string; name: string; created_at: string; last_used_at: string | null };
  recovery_codes: string[];
  user?: User;
  tokens?: Tokens;
}

/** The original library's SessionInfo (`GET /api/v1/auth/session`). */
export interface SessionInfo {
  user_id: string;
  session_id: string;
  role: string;
  expires_at: number;
  org_id: string | null;
  org_role: string | null;
  email: string | null;
  /** Local verification only: the verified claims. */
  claims?: Record<string, unknown>;
  /** Local verification only: the token itself. */
  access_token?: string;
}

export interface Org {
  id: string;
  name: string;
  slug: string;
  created_at?: string;
  [key: string]: unknown;
}

export interface OrgMembership {
  org: Org;
  role: string;
}

export interface Member {
  user_id: string;
  email: string | null;
  role: string;
  joined_at?: string;
}

/** What `createLoginUrl` made: send the browser to `url`; keep `state` and `codeVerifier` for the callback. */
export interface HostedLogin {
  url: string;
  state: string;
  codeVerifier: string;
}
