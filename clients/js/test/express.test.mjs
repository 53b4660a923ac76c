// requireAuth() in a real Express app, with tokens from a live derp.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import express from "express";
import { DerpClient } from "../dist/index.js";
import { PASSWORD, newEmail, startDerp } from "./derp.mjs";

let server;
let derp;
let app;
let base;
before(async () => {
  server = await startDerp({ extra: '[orgs]\nroles = ["billing"]' });
  derp = new DerpClient(server.url);
  const a = express();
  a.get("/me", derp.requireAuth(), (req, res) => res.json({ user_id: req.derp.user_id, email: req.derp.email }));
  a.get("/admin", derp.requireAuth({ roles: ["admin"] }), (req, res) => res.json({ ok: true }));
  a.get("/org", derp.requireAuth({ orgRole: "admin" }), (req, res) => res.json({ org_id: req.derp.org_id, org_role: req.derp.org_role }));
  a.get("/invoices", derp.requireAuth({ orgRole: "billing" }), (req, res) => res.json({ org_role: req.derp.org_role }));
  a.get("/org-member", derp.requireAuth({ orgRole: "member" }), (req, res) => res.json({ ok: true }));
  a.get("/maybe", derp.requireAuth({ optional: true }), (req, res) => res.json({ signed_in: Boolean(req.derp) }));
  await new Promise((ok) => {
    app = a.listen(0, "127.0.0.1", ok);
  });
  base = `http://127.0.0.1:${app.address().port}`;
});
after(async () => {
  app?.close();
  await server?.stop();
});

const get = (path, token) => fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

test("401 without a valid token, in derp's error shape", async () => {
  const res = await get("/me");
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("www-authenticate"), "Bearer");
  assert.equal((await res.json()).error.code, "unauthenticated");
  assert.equal((await get("/me", "garbage")).status, 401);
  assert.deepEqual(await (await get("/maybe")).json(), { signed_in: false });
});

test("req.derp is the session", async () => {
  const email = newEmail();
  const { user, tokens } = await derp.auth.signUp({ email, password: PASSWORD });
  const res = await get("/me", tokens.access_token);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { user_id: user.id, email });
  assert.deepEqual(await (await get("/maybe", tokens.access_token)).json(), { signed_in: true });
});

test("roles and org roles", async () => {
  const plain = await derp.auth.signUp({ email: newEmail(), password: PASSWORD });
  assert.equal((await get("/admin", plain.tokens.access_token)).status, 403);
  const adminEmail = newEmail("admin");
  server.cli("admin", "create", "--email", adminEmail, "--password", PASSWORD);
  const admin = await derp.auth.signInWithPassword(adminEmail, PASSWORD);
  assert.equal((await get("/admin", admin.tokens.access_token)).status, 200);

  assert.equal((await get("/org", plain.tokens.access_token)).status, 403, "no active org");
  const org = await derp.auth.createOrg({ name: "Org", slug: `org-${randomUUID().slice(0, 8)}`, accessToken: plain.tokens.access_token });
  const member = await derp.auth.signUp({ email: newEmail(), password: PASSWORD });
  await derp.auth.addOrgMember({ orgId: org.id, userId: member.user.id, accessToken: plain.tokens.access_token });
  const ownerActive = await derp.auth.setActiveOrg({ accessToken: plain.tokens.access_token, orgId: org.id });
  const res = await get("/org", ownerActive.access_token);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { org_id: org.id, org_role: "owner" });
  const memberActive = await derp.auth.setActiveOrg({ accessToken: member.tokens.access_token, orgId: org.id });
  assert.equal((await get("/org", memberActive.access_token)).status, 403, "a member is below admin");
  assert.equal((await get("/invoices", memberActive.access_token)).status, 403, "not the billing role");

  // A custom role ([orgs] roles): by name in org_role, a member's rank.
  const biller = await derp.auth.signUp({ email: newEmail(), password: PASSWORD });
  const added = await derp.auth.addOrgMember({ orgId: org.id, userId: biller.user.id, role: "billing", accessToken: plain.tokens.access_token });
  assert.equal(added.role, "billing");
  const billerActive = await derp.auth.setActiveOrg({ accessToken: biller.tokens.access_token, orgId: org.id });
  const inv = await get("/invoices", billerActive.access_token);
  assert.equal(inv.status, 200);
  assert.deepEqual(await inv.json(), { org_role: "billing" });
  assert.equal((await get("/org-member", billerActive.access_token)).status, 200);
  assert.equal((await get("/org", billerActive.access_token)).status, 403);
  assert.equal((await get("/invoices", ownerActive.access_token)).status, 403, "owners do not hold billing");
});
