// Organizations as the signed-in user and, with the service key, as an admin.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { DerpClient, DerpError } from "../dist/index.js";
import { PASSWORD, SERVICE_KEY, newEmail, startDerp } from "./derp.mjs";

let server;
let derp;
before(async () => {
  server = await startDerp();
  derp = new DerpClient(server.url, { serviceKey: SERVICE_KEY });
});
after(() => server?.stop());

const slug = () => `acme-${randomUUID().slice(0, 8)}`;
const signUp = () => derp.auth.signUp({ email: newEmail(), password: PASSWORD });
const code = (c) => (e) => e instanceof DerpError && e.code === c;

test("org lifecycle as users", async () => {
  const owner = await signUp();
  const other = await signUp();
  const s = slug();
  const org = await derp.auth.createOrg({ name: "Acme", slug: s, accessToken: owner.tokens.access_token });
  assert.equal(org.slug, s);
  await assert.rejects(derp.auth.createOrg({ name: "Again", slug: s, accessToken: other.tokens.access_token }), code("org_exists"));
  const m = await derp.auth.addOrgMember({ orgId: org.id, email: other.user.email, accessToken: owner.tokens.access_token });
  assert.equal(m.user_id, other.user.id);
  assert.equal(m.role, "member");
  await assert.rejects(derp.auth.addOrgMember({ orgId: org.id, userId: other.user.id, accessToken: owner.tokens.access_token }), code("member_exists"));
  assert.deepEqual(
    (await derp.auth.listOrgs({ accessToken: other.tokens.access_token })).map((x) => [x.org.id, x.role]),
    [[org.id, "member"]],
  );
  const members = await derp.auth.listOrgMembers(org.id, { accessToken: owner.tokens.access_token });
  assert.equal(members.length, 2);
  assert.equal((await derp.auth.updateOrgMember({ orgId: org.id, userId: other.user.id, role: "admin", accessToken: owner.tokens.access_token })).role, "admin");
  await assert.rejects(derp.auth.removeOrgMember({ orgId: org.id, userId: owner.user.id, accessToken: owner.tokens.access_token }), code("last_owner"));
  assert.equal(await derp.auth.removeOrgMember({ orgId: org.id, userId: other.user.id, accessToken: owner.tokens.access_token }), true);
  await assert.rejects(derp.auth.removeOrgMember({ orgId: org.id, userId: other.user.id, accessToken: owner.tokens.access_token }), code("not_found"));
});

test("setActiveOrg puts the org in the token, kept across refresh", async () => {
  const owner = await signUp();
  const org = await derp.auth.createOrg({ name: "Active", slug: slug(), accessToken: owner.tokens.access_token });
  const session = await derp.verifyAccessToken(owner.tokens.access_token);
  const tokens = await derp.auth.setActiveOrg({ accessToken: session, orgId: org.id });
  const active = await derp.verifyAccessToken(tokens.access_token);
  assert.deepEqual([active.org_id, active.org_role, active.session_id], [org.id, "owner", session.session_id]);
  const refreshed = await derp.auth.refreshToken(tokens.refresh_token);
  assert.equal((await derp.verifyAccessToken(refreshed.access_token)).org_id, org.id);
  const cleared = await derp.auth.setActiveOrg({ accessToken: refreshed.access_token, orgId: null });
  assert.equal((await derp.verifyAccessToken(cleared.access_token)).org_id, null);
  const stranger = await signUp();
  await assert.rejects(derp.auth.setActiveOrg({ accessToken: stranger.tokens.access_token, orgId: org.id }), (e) => [403, 404].includes(e.status));
});

test("admin calls with the service key", async () => {
  const owner = await signUp();
  const other = await signUp();
  const org = await derp.auth.createOrg({ name: "By admin", slug: slug(), creatorId: owner.user.id });
  await derp.auth.addOrgMember({ orgId: org.id, userId: other.user.id, role: "admin" });
  assert.deepEqual((await derp.auth.listOrgs({ userId: other.user.id })).map((x) => [x.org.id, x.role]), [[org.id, "admin"]]);
  assert.equal(await derp.auth.removeOrgMember({ orgId: org.id, userId: other.user.id }), true);
  assert.deepEqual(await derp.auth.listOrgs({ userId: other.user.id }), []);
  assert.throws(() => new DerpClient(server.url).auth.createOrg({ name: "x", slug: slug(), creatorId: owner.user.id }), TypeError);
});
