// Compiled, not run, by `tsc -p test/tsconfig.json` after the build: the
// published types (dist/*.d.ts) fit Express's own and the Fetch API's, so
// TypeScript apps can use the middleware and helpers as they are.
import express from "express";
import { DerpClient, requireAuth, verifyWebhook, type SessionInfo } from "../dist/index.js";

const derp = new DerpClient("http://127.0.0.1:8080", { jwtSecret: "x".repeat(32) });
const app = express();
app.get("/me", derp.requireAuth(), (req, res) => {
  const session: SessionInfo | undefined = (req as { derp?: SessionInfo }).derp;
  res.json({ user: session?.user_id });
});
app.use("/admin", requireAuth(derp, { roles: ["admin"], orgRole: "admin" }));
app.post("/hooks/derp", express.raw({ type: "application/json" }), (req, res) => {
  const event = verifyWebhook<{ type: string }>(req.body as Buffer, req.headers, "whsec_c2VjcmV0");
  res.json({ type: event.type });
});
export async function handler(request: Request): Promise<Response> {
  const session = await derp.auth.authenticate(request);
  return new Response(session ? "yes" : "no", { status: session ? 200 : 401 });
}
