// A relying party on openid-client 6.8.9 (the certified library, strict by
// default) signing a user in through derp as its OpenID Connect provider.
// The browser is driven with HTTP requests through derp's hosted pages.
// derp is reached over https (the test puts a TLS front before it and trusts
// its certificate through NODE_EXTRA_CA_CERTS): no option is relaxed.
//
// env: DERP_URL, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, POST_LOGOUT_URI,
//      EMAIL, PASSWORD. Prints one JSON object of what it saw.
import * as client from 'openid-client';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const base = env('DERP_URL');
const redirectUri = env('REDIRECT_URI');

// A browser: one cookie jar for derp, no redirects followed.
const jar = new Map();
async function browse(url, init = {}) {
  const headers = new Headers(init.headers || {});
  if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
  const res = await fetch(new URL(url, base), { ...init, headers, redirect: 'manual' });
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const i = pair.indexOf('=');
    jar.set(pair.slice(0, i), pair.slice(i + 1));
  }
  return res;
}
const unescape = (s) => s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&').replace(/&quot;/g, '"');
const hidden = (html, name) => {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  if (!m) throw new Error(`no ${name} on the page`);
  return unescape(m[1]);
};

/** Follows derp's pages from the authorization URL to the app's callback. */
async function signIn(authorizationUrl) {
  let res = await browse(authorizationUrl);
  let next = res.headers.get('location');
  if (next && next.startsWith('/login')) {
    const page = await (await browse(next)).text();
    const form = new URLSearchParams({
      csrf_token: hidden(page, 'csrf_token'),
      redirect_to: hidden(page, 'redirect_to'),
      email: env('EMAIL'),
      password: env('PASSWORD'),
    });
    res = await browse('/login', {
      method: 'POST',
      body: form,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    if (res.status !== 303) throw new Error(`sign-in answered ${res.status}`);
    res = await browse(res.headers.get('location'));
    next = res.headers.get('location');
  }
  if (!next || !next.startsWith(redirectUri)) {
    throw new Error(`not sent back to the app: ${res.status} ${next}`);
  }
  return new URL(next);
}

const config = await client.discovery(
  new URL(base),
  env('CLIENT_ID'),
  undefined,
  client.ClientSecretBasic(env('CLIENT_SECRET')),
);

const verifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const url = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: 'openid email profile offline_access orgs',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  state,
  nonce,
});
const callback = await signIn(url);
const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: verifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
});
const idClaims = tokens.claims();
const userinfo = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub);
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
const introspected = await client.tokenIntrospection(config, refreshed.access_token);
await client.tokenRevocation(config, refreshed.refresh_token);
const afterRevocation = await client.tokenIntrospection(config, refreshed.access_token);
let userinfoAfterRevocation = 'answered';
try {
  await client.fetchUserInfo(config, refreshed.access_token, idClaims.sub);
} catch (e) {
  userinfoAfterRevocation = e.status ?? e.cause?.status ?? e.code ?? 'refused';
}
const logout = client.buildEndSessionUrl(config, {
  id_token_hint: tokens.id_token,
  post_logout_redirect_uri: env('POST_LOGOUT_URI'),
  state: 'bye',
});
const loggedOut = await browse(logout);

console.log(JSON.stringify({
  issuer: config.serverMetadata().issuer,
  id_token_claims: idClaims,
  userinfo,
  refreshed: Boolean(refreshed.access_token && refreshed.refresh_token !== tokens.refresh_token),
  introspected,
  after_revocation: afterRevocation,
  userinfo_after_revocation: userinfoAfterRevocation,
  logout_status: loggedOut.status,
  logout_location: loggedOut.headers.get('location'),
}));
