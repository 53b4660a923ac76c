// A Google-like OpenID provider for derp's tests, on oauth2-mock-server:
//   node provider.mjs PORT   (env CLIENT_ID, CLIENT_SECRET)
// On top of the mock it checks what Google checks: the client secret, the
// redirect URI the code was issued for, single-use codes, and PKCE: a code
// whose authorization carried a code_challenge needs the matching S256
// code_verifier (as Google does once a challenge was sent). The identity of
// each authorization comes from `login_hint`: base64url JSON with `sub`,
// `email`, `email_verified`, and for negative tests `nonce`, `iss`, `aud`
// overrides that end up in the id_token.
import { createHash } from "node:crypto";
import { OAuth2Server } from "oauth2-mock-server";

const port = Number(process.argv[2]);
const clientId = process.env.CLIENT_ID || "derp-client";
const clientSecret = process.env.CLIENT_SECRET || "derp-secret";
const server = new OAuth2Server();
await server.issuer.keys.generate("RS256");

const codes = new Map();

server.service.on("beforeAuthorizeRedirect", (redirect, req) => {
  const q = new URL(req.url, "http://localhost").searchParams;
  let hint = {};
  try { hint = JSON.parse(Buffer.from(q.get("login_hint") || "", "base64url").toString() || "{}"); } catch { hint = {}; }
  codes.set(redirect.url.searchParams.get("code"), { hint, redirectUri: q.get("redirect_uri"), clientId: q.get("client_id"), challenge: q.get("code_challenge"), used: false });
});

server.service.on("beforeTokenSigning", (token, req) => {
  const entry = codes.get(req.body?.code);
  if (!entry) return;
  const h = entry.hint;
  token.payload.sub = h.sub || "anonymous";
  if (h.email !== undefined) token.payload.email = h.email;
  if (h.email_verified !== undefined) token.payload.email_verified = h.email_verified;
  if (h.nonce !== undefined) token.payload.nonce = h.nonce;
  if (h.iss !== undefined) token.payload.iss = h.iss;
  if (h.aud !== undefined) token.payload.aud = h.aud;
});

server.service.on("beforeResponse", (response, req) => {
  const refuse = (status, error) => { response.statusCode = status; response.body = { error }; };
  const auth = req.headers.authorization || "";
  const [id, secret] = auth.startsWith("Basic ")
    ? Buffer.from(auth.slice(6), "base64").toString().split(":").map(decodeURIComponent)
    : [req.body?.client_id, req.body?.client_secret];
  if (id !== clientId || secret !== clientSecret) return refuse(401, "invalid_client");
  const entry = codes.get(req.body?.code);
  if (!entry || entry.used) return refuse(400, "invalid_grant");
  entry.used = true;
  if (entry.redirectUri !== req.body?.redirect_uri) return refuse(400, "invalid_grant");
  if (entry.challenge) {
    const verifier = req.body?.code_verifier || "";
    const s256 = createHash("sha256").update(verifier).digest("base64url");
    if (s256 !== entry.challenge) return refuse(400, "invalid_grant");
  }
});

server.service.on("beforeUserinfo", (response) => {
  response.body = { sub: "anonymous" };
});

await server.start(port, "127.0.0.1");
server.issuer.url = `http://127.0.0.1:${port}`;
console.log(`ready ${server.issuer.url}`);
const stop = () => server.stop().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
