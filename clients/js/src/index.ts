export { DerpClient, AuthApi, requireAuth, bearerToken, headerOf, pkcePair } from "./client.js";
export type { DerpClientOptions, Middleware, MiddlewareRequest, MiddlewareResponse, RequestLike, RequireAuthOptions, TokenLike } from "./client.js";
export { DerpError, WebhookVerificationError } from "./errors.js";
export { JwksCache, OrgContextVerifier, TokenVerifier } from "./verify.js";
export type { JwksCacheOptions, VerifierOptions } from "./verify.js";
export { signWebhook, verifyWebhook, WEBHOOK_TOLERANCE_SECONDS } from "./webhooks.js";
export type { AuthResult, HostedLogin, Member, Org, OrgMembership, SessionInfo, Tokens, TotpEnrollment, TotpVerified, User } from "./types.js";
