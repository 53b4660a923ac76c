// derp with the Clerk backend: the X-Org-Context value derp's setActiveOrg
// makes is read locally by authenticate(). Clerk is a small stand-in (its
// JWKS and users endpoints); the test signs the session tokens as Clerk would.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { DerpClient, DerpError } from "../dist/index.js";
import { startDerp } from "./derp.mjs";

const SECRET = "an-org-context-secret-of-32-bytes-or-more";
const ISSUER = "https://clerk.example.test";
let server;
let api;
let apiUrl;
let privateKey;

before(async () => {
  const pair = await generateKeyPair("RS256");
  privateKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  api = createServer((req, res) => {
    let body;
    if (req.url === "/v1/jwks") body = { keys: [jwk] };
    else if (req.url.startsWith("/v1/users/")) {
      const id = req.url.split("/").pop();
      body = {
        id,
        primary_email_address_id: "idn_1",
        email_addresses: [{ id: "idn_1", email_address: `${id}@example.com`, verification: { status: "verified" } }],
        created_at: 1_700_000_000_000,
        public_metadata: {},
      };
    } else {
      res.statusCode = 404;
      return res.end();
    }
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(body));
  });
  await new Promise((ok) => api.listen(0, "127.0.0.1", ok));
  apiUrl = `http://127.0.0.1:${api.address().port}`;
  server = await startDerp({
    toml: (port, data) => `[server]
bind = "127.0.0.1:${port}"
data_dir = "${data}"
[auth.clerk]
secret_key = "sk_test_stand_in"
api_url = "${apiUrl}"
[auth]
org_context_secret = "${SECRET}"
`,
  });
});
after(async () => {
  await server?.stop();
  api?.close();
});

const sessionToken = (sub, sid) =>
  new SignJWT({ sid }).setProtectedHeader({ alg: "RS256", kid: "k1" }).setSubject(sub).setIssuer(ISSUER).setIssuedAt().setNotBefore("-5s").setExpirationTime("60s").sign(privateKey);

test("the org context derp makes is verified locally", async () => {
  const sub = `user_${randomUUID().slice(0, 8)}`;
  const token = await sessionToken(sub, "sess_1");
  const derp = new DerpClient(server.url, { backend: "clerk", jwksUrl: `${apiUrl}/v1/jwks`, issuer: ISSUER, orgContextSecret: SECRET });
  const org = await derp.auth.createOrg({ name: "Clerk org", slug: `c-${randomUUID().slice(0, 8)}`, accessToken: token });
  const ctx = (await derp.auth.setActiveOrg({ accessToken: token, orgId: org.id })).access_token;
  assert.match(ctx, /^oc1\./);
  const headers = { authorization: `Bearer ${token}`, "x-org-context": ctx };
  const s = await derp.auth.authenticate(headers);
  assert.deepEqual([s.user_id, s.session_id, s.org_id, s.org_role], [sub, "sess_1", org.id, "owner"]);
  const remote = await derp.auth.getSession(token, { orgContext: ctx });
  assert.deepEqual([remote.org_id, remote.org_role], [org.id, "owner"]);
  assert.equal((await derp.auth.authenticate({ ...headers, "x-org-context": `${ctx.slice(0, -2)}AA` })).org_id, null);
  const otherLogin = await sessionToken(sub, "sess_other");
  assert.equal((await derp.auth.authenticate({ authorization: `Bearer ${otherLogin}`, "x-org-context": ctx })).org_id, null);
  assert.equal((await derp.auth.authenticate({ cookie: `__session=${token}`, "x-org-context": ctx })).org_id, org.id);
  const plain = new DerpClient(server.url, { backend: "clerk", jwksUrl: `${apiUrl}/v1/jwks`, issuer: ISSUER });
  assert.equal((await plain.auth.authenticate(headers)).org_id, null);
  await assert.rejects(new DerpClient(server.url).auth.signInWithPassword("a@example.com", "whatever password"), (e) => e instanceof DerpError && e.status === 501);
});
