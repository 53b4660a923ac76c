/**
 * Local verification of access tokens: derp's JWKS (cached, refetched once
 * on an unknown `kid`, at most once per `refetchIntervalMs`), or the HS256
 * secret. The algorithm is pinned to the key's own; `none`, HMAC with a
 * public key and every other switch are refused. Also the signed
 * `X-Org-Context` value of derp's Cognito and Clerk backends.
 */
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { decodeProtectedHeader, importJWK, jwtVerify, errors as joseErrors } from "jose";
import type { JWK, JWTPayload } from "jose";
import { DerpError } from "./errors.js";
import type { SessionInfo } from "./types.js";

const ASYMMETRIC = new Set(["EdDSA", "Ed25519", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]);

type Key = Awaited<ReturnType<typeof importJWK>>;

function invalid(message: string, cause?: unknown): DerpError {
  return new DerpError(401, "invalid_token", message, { cause });
}

/** The one algorithm a JWK verifies: its `alg`, else what kty/crv imply. */
function jwkAlgorithm(jwk: JWK): string | undefined {
  if (jwk.alg) return jwk.alg;
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") return "EdDSA";
  if (jwk.kty === "EC") return ({ "P-256": "ES256", "P-384": "ES384", "P-521": "ES512" } as Record<string, string>)[jwk.crv ?? ""];
  if (jwk.kty === "RSA") return "RS256";
  return undefined;
}

export interface JwksCacheOptions {
  /** Refetch the whole set when older than this. [1 hour] */
  maxAgeMs?: number;
  /** At most one refetch for unknown kids per this interval. [60 s] */
  refetchIntervalMs?: number;
  fetch?: typeof fetch;
}

/** Keys by `kid`, fetched from a JWKS URL. */
export class JwksCache {
  readonly url: string;
  /** How many times the JWKS was fetched (for tests and metrics). */
  fetches = 0;
  private keys = new Map<string, { alg: string; key: Key }>();
  /** Last successful fetch. */
  private fetchedAt: number | undefined;
  private attemptedAt: number | undefined;
  private inflight: Promise<void> | undefined;
  private readonly maxAgeMs: number;
  private readonly refetchIntervalMs: number;
  private readonly fetchFn: typeof fetch;

  constructor(url: string, options: JwksCacheOptions = {}) {
    this.url = url;
    this.maxAgeMs = options.maxAgeMs ?? 3_600_000;
    this.refetchIntervalMs = options.refetchIntervalMs ?? 60_000;
    this.fetchFn = options.fetch ?? fetch;
  }

  private async load(): Promise<void> {
    // Attempts, failed ones too, count for the refetch rate limit.
    this.attemptedAt = Date.now();
    this.fetches += 1;
    let res: Response;
    try {
      res = await this.fetchFn(this.url);
    } catch (e) {
      throw new DerpError(0, "network_error", `could not fetch the JWKS: ${String(e)}`, { cause: e });
    }
    if (res.status !== 200) throw new DerpError(res.status, "upstream_error", "the JWKS endpoint did not answer 200");
    const body = (await res.json()) as { keys?: JWK[] };
    const keys = new Map<string, { alg: string; key: Key }>();
    for (const jwk of body.keys ?? []) {
      const alg = jwkAlgorithm(jwk);
      if (!jwk.kid || !alg || !ASYMMETRIC.has(alg) || (jwk.use && jwk.use !== "sig")) continue;
      try {
        keys.set(jwk.kid, { alg, key: await importJWK(jwk, alg) });
      } catch {
        // a key this runtime cannot use is skipped
      }
    }
    this.keys = keys;
    this.fetchedAt = Date.now();
  }

  private refresh(): Promise<void> {
    this.inflight ??= this.load().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  async get(kid: string): Promise<{ alg: string; key: Key } | undefined> {
    if (this.inflight) await this.inflight;
    const now = Date.now();
    // Never fetched (or the last fetch failed), or older than maxAgeMs.
    if (this.fetchedAt === undefined || now - this.fetchedAt >= this.maxAgeMs) {
      await this.refresh();
    } else if (!this.keys.has(kid) && (this.attemptedAt === undefined || now - this.attemptedAt >= this.refetchIntervalMs)) {
      // Perhaps `derp keys rotate`: one refetch, rate limited.
      await this.refresh();
    }
    return this.keys.get(kid);
  }
}

export interface VerifierOptions {
  issuer: string;
  jwks?: JwksCache;
  /** derp's `[auth.native.jwt] secret` with `algorithm = "HS256"`. */
  secret?: string | Uint8Array;
  audience?: string;
  backend?: "native" | "cognito" | "clerk";
  /** Cognito: the app client id the token must be for. */
  clientId?: string;
  /** Clerk: accepted `azp` values ([] = any). */
  authorizedParties?: string[];
  /** Seconds of clock skew tolerated. [0] */
  clockTolerance?: number;
  /** The current time (tests). */
  now?: () => Date;
}

export class TokenVerifier {
  readonly options: VerifierOptions;
  private readonly secret?: Uint8Array;

  constructor(options: VerifierOptions) {
    if (!options.secret && !options.jwks) throw new Error("a JWKS or an HS256 secret is needed");
    this.options = { backend: "native", ...options };
    if (options.secret !== undefined) {
      this.secret = typeof options.secret === "string" ? new TextEncoder().encode(options.secret) : options.secret;
    }
  }

  async verify(token: string): Promise<SessionInfo> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch (e) {
      throw invalid("not a JWT", e);
    }
    const o = this.options;
    const alg = header.alg;
    let key: Key | Uint8Array;
    if (this.secret) {
      if (alg !== "HS256") throw invalid(`algorithm ${String(alg)} refused: HS256 is configured`);
      key = this.secret;
    } else {
      if (!alg || !ASYMMETRIC.has(alg)) throw invalid(`algorithm ${String(alg)} refused`);
      if (!header.kid) throw invalid("no kid in the token header");
      const found = await o.jwks!.get(header.kid);
      if (!found) throw invalid("unknown signing key");
      if (found.alg !== alg) throw invalid(`algorithm ${alg} is not the key's (${found.alg})`);
      key = found.key;
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: [alg],
        issuer: o.issuer,
        audience: o.audience,
        typ: o.backend === "native" ? "at+jwt" : undefined,
        requiredClaims: ["exp", "iat", "sub", "iss"],
        clockTolerance: o.clockTolerance ?? 0,
        currentDate: o.now?.(),
      }));
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) throw invalid("the token has expired", e);
      throw invalid(`the token does not verify: ${(e as Error).message}`, e);
    }
    return this.session(payload, token);
  }

  private session(c: JWTPayload, token: string): SessionInfo {
    const o = this.options;
    const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
    const base = { user_id: c.sub!, expires_at: c.exp!, email: str(c.email), claims: c as Record<string, unknown>, access_token: token };
    if (o.backend === "cognito") {
      if (c.token_use !== "access") throw invalid("not a Cognito access token");
      if (o.clientId && (c.client_id ?? c.aud) !== o.clientId) throw invalid("token of another app client");
      const groups = Array.isArray(c["cognito:groups"]) ? (c["cognito:groups"] as string[]) : [];
      return { ...base, session_id: str(c.origin_jti) ?? str(c.jti) ?? c.sub!, role: groups.includes("admin") ? "admin" : "default", org_id: null, org_role: null };
    }
    if (o.backend === "clerk") {
      if (o.authorizedParties?.length && !o.authorizedParties.includes(String(c.azp))) throw invalid("azp is not an authorized party");
      // The org Clerk itself made active, if any (session token v2 `o`, v1 org_*).
      const org = (typeof c.o === "object" && c.o !== null ? c.o : {}) as Record<string, unknown>;
      const orgRole = str(org.rol) ?? str(c.org_role);
      return { ...base, session_id: str(c.sid) ?? "", role: "default", org_id: str(org.id) ?? str(c.org_id), org_role: orgRole?.replace(/^org:/, "") ?? null };
    }
    const sid = str(c.sid) ?? str(c.session_id);
    if (!sid) throw invalid("no sid in the token");
    return { ...base, session_id: sid, role: str(c.role) ?? "default", org_id: str(c.org_id), org_role: str(c.org_role) };
  }
}

/**
 * The signed `X-Org-Context` value of derp's Cognito and Clerk backends:
 * `oc1.<base64url(JSON {sub, sid, org_id, org_role, iat, exp})>.<base64url(HMAC-SHA256)>`,
 * keyed with HKDF-SHA256(`[auth] org_context_secret`, salt "derp", info
 * "derp/x-org-context/v1"), bound to the user and the login session.
 */
export class OrgContextVerifier {
  private readonly key: Buffer;
  private readonly now: () => number;

  constructor(secret: string | Uint8Array, now: () => number = () => Date.now() / 1000) {
    const master = typeof secret === "string" ? Buffer.from(secret) : Buffer.from(secret);
    if (master.length < 32) throw new Error("org_context_secret: at least 32 bytes");
    this.key = Buffer.from(hkdfSync("sha256", master, Buffer.from("derp"), Buffer.from("derp/x-org-context/v1"), 32));
    this.now = now;
  }

  verify(value: string, sub: string, sid: string): { org_id: string; org_role: string } | null {
    value = value.trim();
    const parts = value.split(".");
    if (value.length > 2048 || parts.length !== 3 || parts[0] !== "oc1") return null;
    const expected = createHmac("sha256", this.key).update(`${parts[0]}.${parts[1]}`).digest();
    const got = Buffer.from(parts[2], "base64url");
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) return null;
    let ctx: Record<string, unknown>;
    try {
      ctx = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
    } catch {
      return null;
    }
    const now = this.now();
    const fresh = typeof ctx.exp === "number" && typeof ctx.iat === "number" && ctx.exp > now && ctx.iat <= now + 60;
    if (!fresh || ctx.sub !== sub || ctx.sid !== sid) return null;
    return { org_id: String(ctx.org_id), org_role: String(ctx.org_role) };
  }
}
