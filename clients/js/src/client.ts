import { DerpError } from "./errors.js";
import type { AuthResult, HostedLogin, Member, Org, OrgMembership, SessionInfo, Tokens, TotpEnrollment, TotpVerified, User } from "./types.js";
import { JwksCache, OrgContextVerifier, TokenVerifier } from "./verify.js";

/** Anything with headers: a Node/Express request, a Fetch `Request`, a `Headers`, or a plain record. */
export type RequestLike =
  | { headers: Headers | Record<string, string | string[] | undefined> }
  | Headers
  | Record<string, string | string[] | undefined>;

export type TokenLike = string | SessionInfo;

export interface DerpClientOptions {
  /** derp's `[auth.native.jwt] secret` with `algorithm = "HS256"`: verify with it instead of the JWKS. */
  jwtSecret?: string | Uint8Array;
  /** The token issuer, derp's `public_url`. [baseUrl] */
  issuer?: string;
  /** Required `aud`, when derp has `audience`. */
  audience?: string;
  /** [`${baseUrl}/.well-known/jwks.json`] */
  jwksUrl?: string;
  jwksMaxAgeMs?: number;
  /** At most one refetch for unknown kids per this interval. [60000] */
  jwksRefetchIntervalMs?: number;
  backend?: "native" | "cognito" | "clerk";
  clientId?: string;
  authorizedParties?: string[];
  /** `[auth] org_context_secret` (Cognito/Clerk): read `X-Org-Context` locally. */
  orgContextSecret?: string | Uint8Array;
  /** From `[admin] service_keys`: the org calls act as an admin when given no user token. */
  serviceKey?: string;
  clockTolerance?: number;
  /** The current time for token checks (tests). */
  now?: () => Date;
  fetch?: typeof fetch;
  /** Per request. [10000] */
  timeoutMs?: number;
}

export function headerOf(req: RequestLike | undefined, name: string): string | undefined {
  if (!req) return undefined;
  const h: unknown = req instanceof Headers ? req : "headers" in req && typeof req.headers === "object" ? req.headers : req;
  if (h instanceof Headers) return h.get(name) ?? undefined;
  const rec = h as Record<string, string | string[] | undefined>;
  const key = Object.keys(rec).find((k) => k.toLowerCase() === name.toLowerCase());
  const v = key === undefined ? undefined : rec[key];
  return Array.isArray(v) ? v[0] : v;
}

/** The token of an `Authorization: Bearer …` header. */
export function bearerToken(req: RequestLike | undefined): string | undefined {
  const header = headerOf(req, "authorization") ?? "";
  const [scheme, ...rest] = header.split(" ");
  const token = rest.join(" ").trim();
  return scheme.toLowerCase() === "bearer" && token ? token : undefined;
}

function cookieOf(req: RequestLike | undefined, name: string): string | undefined {
  const raw = headerOf(req, "cookie");
  if (!raw) return undefined;
  for (const part of raw.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return undefined;
}

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

function randomString(bytes: number): string {
  return b64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** A random PKCE verifier and its S256 challenge. */
export async function pkcePair(): Promise<{ codeVerifier: string; codeChallenge: string }> {
  const codeVerifier = randomString(48);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(codeVerifier));
  return { codeVerifier, codeChallenge: b64url(new Uint8Array(digest)) };
}

function tokenOf(t: TokenLike | undefined): string {
  const token = typeof t === "string" ? t : t?.access_token;
  if (!token) throw new TypeError("an access token is needed");
  return token;
}

function compact<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const enc = encodeURIComponent;

/** A client for one derp server. Calls are under `.auth`, as in the Python client. */
export class DerpClient {
  readonly baseUrl: string;
  readonly verifier: TokenVerifier;
  readonly orgContext?: OrgContextVerifier;
  readonly auth: AuthApi;
  readonly options: DerpClientOptions;
  private readonly fetchFn: typeof fetch;

  constructor(baseUrl: string, options: DerpClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.options = options;
    this.fetchFn = options.fetch ?? fetch;
    const jwks = options.jwtSecret
      ? undefined
      : new JwksCache(options.jwksUrl ?? `${this.baseUrl}/.well-known/jwks.json`, {
          maxAgeMs: options.jwksMaxAgeMs,
          refetchIntervalMs: options.jwksRefetchIntervalMs,
          fetch: this.fetchFn,
        });
    this.verifier = new TokenVerifier({
      issuer: options.issuer ?? this.baseUrl,
      jwks,
      secret: options.jwtSecret,
      audience: options.audience,
      backend: options.backend ?? "native",
      clientId: options.clientId,
      authorizedParties: options.authorizedParties,
      clockTolerance: options.clockTolerance,
      now: options.now,
    });
    if (options.orgContextSecret) this.orgContext = new OrgContextVerifier(options.orgContextSecret);
    this.auth = new AuthApi(this);
  }

  /** One call to derp; a non-2xx answer throws DerpError. */
  async request<T = unknown>(
    method: string,
    path: string,
    init: { json?: unknown; token?: string; headers?: Record<string, string>; query?: Record<string, string | number | undefined> } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { ...init.headers };
    if (init.token) headers.authorization = `Bearer ${init.token}`;
    if (init.json !== undefined) headers["content-type"] = "application/json";
    let url = `${this.baseUrl}${path}`;
    const q = Object.entries(init.query ?? {}).filter(([, v]) => v !== undefined) as [string, string][];
    if (q.length) url += `?${new URLSearchParams(q.map(([k, v]) => [k, String(v)]))}`;
    let res: Response;
    try {
      res = await this.fetchFn(url, {
        method,
        headers,
        body: init.json === undefined ? undefined : JSON.stringify(init.json),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
    } catch (e) {
      throw new DerpError(0, "network_error", `could not reach derp: ${String(e)}`, { cause: e });
    }
    const text = await res.text();
    let body: unknown = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
    }
    if (!res.ok) throw DerpError.fromResponse(res.status, body, res.headers);
    return body as T;
  }

  /** Verifies an access token locally; throws DerpError(401, "invalid_token"). */
  verifyAccessToken(token: string, options: { orgContext?: string } = {}): Promise<SessionInfo> {
    return this.auth.verifyAccessToken(token, options);
  }

  /** Express (or plain Node) middleware: `req.derp` is the SessionInfo; 401 without a valid token. */
  requireAuth(options: RequireAuthOptions = {}): Middleware {
    return requireAuth(this, options);
  }
}

export class AuthApi {
  constructor(private readonly c: DerpClient) {}

  // -- sign-up, sign-in, tokens

  /** With confirmation on, `tokens` is null and `confirmation_required` true until the email is confirmed. */
  signUp(p: { email: string; password: string; confirmationUrl?: string; data?: Record<string, unknown> }): Promise<AuthResult> {
    return this.c.request("POST", "/api/v1/auth/sign-up", {
      json: compact({ email: p.email, password: p.password, confirmation_url: p.confirmationUrl, data: p.data }),
    });
  }

  signInWithPassword(email: string, password: string): Promise<AuthResult> {
    return this.c.request("POST", "/api/v1/auth/sign-in", { json: { email, password } });
  }

  // -- second factors

  /**
   * Finishes a sign-in that answered `mfa_required`: `code` is the 6-digit code of the user's
   * authenticator app or one of their recovery codes. A wrong code rejects with
   * DerpError(401, "invalid_code"); after 5 the `mfaToken` is dead (401 "invalid_token").
   */
  completeMfa(mfaToken: string, code: string): Promise<AuthResult> {
    return this.c.request("POST", "/api/v1/auth/mfa/challenge", { json: { mfa_token: mfaToken, code } });
  }

  /**
   * Starts a TOTP factor for the signed-in user (a sign-in within the last 10 minutes), or, with
   * `enrollmentToken` (from a DerpError `mfa_enrollment_required` or a sign-up), for the user whose
   * sign-in waits for it.
   */
  enrollTotp(p: { accessToken?: TokenLike; enrollmentToken?: string; name?: string }): Promise<TotpEnrollment> {
    return this.c.request("POST", "/api/v1/auth/mfa/totp/enroll", {
      json: compact({ name: p.name, enrollment_token: p.enrollmentToken }),
      token: p.enrollmentToken ? undefined : tokenOf(p.accessToken),
    });
  }

  /** Activates the pending factor with its first code; with `enrollmentToken`, the answer also carries the completed sign-in. */
  verifyTotp(p: { factorId: string; code: string; accessToken?: TokenLike; enrollmentToken?: string }): Promise<TotpVerified> {
    return this.c.request("POST", "/api/v1/auth/mfa/totp/verify", {
      json: compact({ factor_id: p.factorId, code: p.code, enrollment_token: p.enrollmentToken }),
      token: p.enrollmentToken ? undefined : tokenOf(p.accessToken),
    });
  }

  /** New tokens; the refresh token rotates (the old one dies). */
  async refreshToken(refreshToken: string): Promise<Tokens> {
    return (await this.c.request<{ tokens: Tokens }>("POST", "/api/v1/auth/refresh", { json: { refresh_token: refreshToken } })).tokens;
  }

  /** Revokes this login's refresh tokens (or every login's, with `scope: "all"`). Access tokens stay valid until they expire. */
  async signOut(accessToken: TokenLike, options: { scope?: "session" | "all" } = {}): Promise<void> {
    await this.c.request("POST", "/api/v1/auth/sign-out", { json: { scope: options.scope ?? "session" }, token: tokenOf(accessToken) });
  }

  confirmEmail(token: string): Promise<AuthResult> {
    return this.c.request("POST", "/api/v1/auth/confirm", { json: { token } });
  }

  getUser(accessToken: TokenLike): Promise<User> {
    return this.c.request("GET", "/api/v1/auth/user", { token: tokenOf(accessToken) });
  }

  // -- authenticate

  async verifyAccessToken(token: string, options: { orgContext?: string } = {}): Promise<SessionInfo> {
    const session = await this.c.verifier.verify(token);
    // As derp does: the header counts only when the token names no org.
    if (options.orgContext && session.org_id === null && this.c.orgContext && this.c.verifier.options.backend !== "native") {
      const ctx = this.c.orgContext.verify(options.orgContext, session.user_id, session.session_id);
      if (ctx) Object.assign(session, ctx);
    }
    return session;
  }

  /**
   * The original `authenticate(request)`: the SessionInfo of the request's
   * bearer token (Clerk: or its `__session` cookie), verified locally, or
   * null. With Cognito or Clerk, a valid `X-Org-Context` fills the org.
   */
  async authenticate(req: RequestLike): Promise<SessionInfo | null> {
    let token = bearerToken(req);
    if (!token && this.c.verifier.options.backend === "clerk") token = cookieOf(req, "__session");
    if (!token) return null;
    try {
      return await this.verifyAccessToken(token, { orgContext: headerOf(req, "x-org-context") });
    } catch (e) {
      if (e instanceof DerpError && e.code === "invalid_token") return null;
      throw e;
    }
  }

  /** derp's own answer (`GET /session`). */
  async getSession(accessToken: TokenLike, options: { orgContext?: string } = {}): Promise<SessionInfo> {
    const headers: Record<string, string> = options.orgContext ? { "x-org-context": options.orgContext } : {};
    return this.c.request("GET", "/api/v1/auth/session", { token: tokenOf(accessToken), headers });
  }

  // -- hosted pages and OAuth

  /**
   * The hosted pages' `/login` (or `page`) URL with a random `state` and a
   * PKCE S256 challenge. Keep `state` and `codeVerifier` (e.g. in the app's
   * session) and exchange the code with `exchangeCode` at the callback.
   */
  async createLoginUrl(redirectTo: string, options: { page?: string; state?: string } = {}): Promise<HostedLogin> {
    const state = options.state ?? randomString(24);
    const { codeVerifier, codeChallenge } = await pkcePair();
    const q = new URLSearchParams({ redirect_to: redirectTo, state, code_challenge: codeChallenge, code_challenge_method: "S256" });
    return { url: `${this.c.baseUrl}/${(options.page ?? "login").replace(/^\/+/, "")}?${q}`, state, codeVerifier };
  }

  /** Exchanges the code derp put on the app's redirect URL (`POST /api/v1/auth/token`; single use, 60 s). */
  exchangeCode(code: string, p: { redirectUri: string; codeVerifier?: string }): Promise<AuthResult> {
    return this.c.request("POST", "/api/v1/auth/token", {
      json: compact({ grant_type: "authorization_code", code, code_verifier: p.codeVerifier, redirect_uri: p.redirectUri }),
    });
  }

  /**
   * Where to send the browser to sign in with `provider`: derp's
   * `/oauth/{provider}` start, which keeps the provider's state and PKCE in a
   * cookie of the browser and returns to `redirectTo?code=…&state=…`
   * (exchange with `exchangeCode`). Made locally, without a request.
   */
  getOAuthAuthorizationUrl(provider: string, p: { state?: string; redirectTo?: string; codeChallenge?: string } = {}): string {
    const q = new URLSearchParams(compact({ redirect_to: p.redirectTo, state: p.state, code_challenge: p.codeChallenge }) as Record<string, string>);
    if (p.codeChallenge) q.set("code_challenge_method", "S256");
    const s = q.toString();
    return `${this.c.baseUrl}/oauth/${enc(provider)}${s ? `?${s}` : ""}`;
  }

  /** Signs in with a code from the provider itself, for apps that ran the browser leg themselves. */
  signInWithOAuth(provider: string, code: string, p: { state?: string; codeVerifier?: string; redirectUri?: string } = {}): Promise<AuthResult> {
    return this.c.request("POST", `/api/v1/auth/oauth/${enc(provider)}/sign-in`, {
      json: compact({ code, state: p.state, code_verifier: p.codeVerifier, redirect_uri: p.redirectUri }),
    });
  }

  // -- magic link, recovery

  async signInWithMagicLink(p: { email: string; magicLinkUrl?: string }): Promise<void> {
    await this.c.request("POST", "/api/v1/auth/magic-link", { json: compact({ email: p.email, magic_link_url: p.magicLinkUrl }) });
  }

  verifyMagicLink(token: string): Promise<AuthResult> {
    return this.c.request("POST", "/api/v1/auth/magic-link/verify", { json: { token } });
  }

  async requestPasswordRecovery(p: { email: string; resetUrl?: string }): Promise<void> {
    await this.c.request("POST", "/api/v1/auth/password/recover", { json: compact({ email: p.email, reset_url: p.resetUrl }) });
  }

  resetPassword(token: string, password: string): Promise<AuthResult> {
    return this.c.request("POST", "/api/v1/auth/password/reset", { json: { token, password } });
  }

  // -- organizations: as the user whose accessToken is given, else as an admin with the service key

  private adminKey(what: string): string {
    if (!this.c.options.serviceKey) throw new TypeError(`${what}: pass accessToken, or configure serviceKey`);
    return this.c.options.serviceKey;
  }

  createOrg(p: { name: string; slug: string; accessToken?: TokenLike; creatorId?: string }): Promise<Org> {
    if (p.accessToken !== undefined) {
      return this.c.request("POST", "/api/v1/orgs", { json: { name: p.name, slug: p.slug }, token: tokenOf(p.accessToken) });
    }
    if (!p.creatorId) throw new TypeError("createOrg: pass accessToken or creatorId");
    return this.c.request("POST", "/api/v1/admin/orgs", {
      json: { name: p.name, slug: p.slug, owner_id: p.creatorId },
      token: this.adminKey("createOrg"),
    });
  }

  getOrg(orgId: string, p: { accessToken: TokenLike }): Promise<Org> {
    return this.c.request("GET", `/api/v1/orgs/${enc(orgId)}`, { token: tokenOf(p.accessToken) });
  }

  async listOrgs(p: { accessToken?: TokenLike; userId?: string; limit?: number; cursor?: string }): Promise<OrgMembership[]> {
    if (p.accessToken !== undefined) {
      return this.c.request("GET", "/api/v1/orgs", { token: tokenOf(p.accessToken), query: { limit: p.limit, cursor: p.cursor } });
    }
    if (!p.userId) throw new TypeError("listOrgs: pass accessToken or userId");
    const user = await this.c.request<{ orgs?: (OrgMembership | (Org & { role: string }))[] }>(
      "GET",
      `/api/v1/admin/users/${enc(p.userId)}`,
      { token: this.adminKey("listOrgs") },
    );
    return (user.orgs ?? []).map((m) => ("org" in m ? (m as OrgMembership) : { org: m as Org, role: (m as { role: string }).role }));
  }

  listOrgMembers(orgId: string, p: { accessToken: TokenLike }): Promise<Member[]> {
    return this.c.request("GET", `/api/v1/orgs/${enc(orgId)}/members`, { token: tokenOf(p.accessToken) });
  }

  private members(orgId: string, accessToken: TokenLike | undefined, what: string): [string, string] {
    return accessToken !== undefined
      ? [`/api/v1/orgs/${enc(orgId)}/members`, tokenOf(accessToken)]
      : [`/api/v1/admin/orgs/${enc(orgId)}/members`, this.adminKey(what)];
  }

  /** Adds a user by id or email; DerpError `member_exists` (409) when already a member. */
  addOrgMember(p: { orgId: string; userId?: string; email?: string; role?: string; accessToken?: TokenLike }): Promise<Member> {
    if (!p.userId && !p.email) throw new TypeError("addOrgMember: pass userId or email");
    const [path, token] = this.members(p.orgId, p.accessToken, "addOrgMember");
    return this.c.request("POST", path, { json: compact({ user_id: p.userId, email: p.email, role: p.role ?? "member" }), token });
  }

  updateOrgMember(p: { orgId: string; userId: string; role: string; accessToken?: TokenLike }): Promise<Member> {
    const [path, token] = this.members(p.orgId, p.accessToken, "updateOrgMember");
    return this.c.request("PATCH", `${path}/${enc(p.userId)}`, { json: { role: p.role }, token });
  }

  /** true when removed; DerpError `not_found` (404) or `last_owner` (409) otherwise. */
  async removeOrgMember(p: { orgId: string; userId: string; accessToken?: TokenLike }): Promise<boolean> {
    const [path, token] = this.members(p.orgId, p.accessToken, "removeOrgMember");
    await this.c.request("DELETE", `${path}/${enc(p.userId)}`, { token });
    return true;
  }

  /** Native: new tokens whose access token carries `org_id`/`org_role`. Cognito/Clerk: `access_token` is the `X-Org-Context` value. */
  async setActiveOrg(p: { accessToken: TokenLike; orgId: string | null }): Promise<Tokens> {
    return (await this.c.request<{ tokens: Tokens }>("POST", "/api/v1/auth/active-org", { json: { org_id: p.orgId }, token: tokenOf(p.accessToken) })).tokens;
  }
}

// -- Express / Node middleware

/** The parts of a Node (and so Express) request and response the middleware uses. */
export interface MiddlewareRequest {
  headers: Record<string, string | string[] | undefined>;
  derp?: SessionInfo;
}
export interface MiddlewareResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}
export type Middleware = (req: MiddlewareRequest, res: MiddlewareResponse, next: (err?: unknown) => void) => void;

export interface RequireAuthOptions {
  /** Global roles allowed (`role` claim); others get 403. */
  roles?: string[];
  /**
   * Minimum role in the active org (`owner > admin > member`; a custom role
   * such as `billing` from derp's `[orgs] roles` counts as `member`); others
   * get 403. A custom role here needs exactly that role.
   */
  orgRole?: string;
  /** Go on without `req.derp` instead of answering 401. */
  optional?: boolean;
}

const ORG_ROLES = ["member", "admin", "owner"];

function deny(res: MiddlewareResponse, status: number, code: string, message: string): void {
  res.statusCode = status;
  if (status === 401) res.setHeader("WWW-Authenticate", "Bearer");
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify({ error: { code, message } }));
}

/** `app.use(requireAuth(derp))`: sets `req.derp` (SessionInfo) or answers 401/403 in derp's error shape. */
export function requireAuth(client: DerpClient, options: RequireAuthOptions = {}): Middleware {
  return (req, res, next) => {
    client.auth.authenticate(req).then(
      (session) => {
        if (!session) {
          if (options.optional) return next();
          return deny(res, 401, "unauthenticated", "a valid bearer token is needed");
        }
        if (options.roles && !options.roles.includes(session.role)) return deny(res, 403, "forbidden", "this needs another role");
        if (options.orgRole) {
          const role = session.org_role ?? "";
          const builtIn = ORG_ROLES.includes(options.orgRole);
          const ok = builtIn
            ? Math.max(ORG_ROLES.indexOf(role), 0) >= ORG_ROLES.indexOf(options.orgRole)
            : role === options.orgRole;
          if (!session.org_id || !role || !ok) {
            return deny(res, 403, "forbidden", `this needs the org role ${options.orgRole}${builtIn ? " or higher" : ""} in the active org`);
          }
        }
        req.derp = session;
        next();
      },
      (err: unknown) => next(err),
    );
  };
}
