// DPoP clients from npm (panva's dpop and oauth4webapi) against the demo's API over HTTP.
// Reads {"ops": [{"op": ..., "base": "http://127.0.0.1:PORT", ...}, ...]} on stdin and
// writes one result per op: {"ok": {...what the client saw...}} or {"error": "..."}.
import { calculateThumbprint, generateKeyPair, generateProof } from "dpop";
import * as oauth from "oauth4webapi";

const PASSWORD = "correct horse battery";
const json = { "content-type": "application/json" };

async function register(base, username) {
  await fetch(`${base}/api/register`, {
    method: "POST",
    headers: json,
    body: JSON.stringify({ username, password: PASSWORD, name: username }),
  });
}

// The dpop package's way: a proof per request; retry once with the server's nonce.
async function withProof(keyPair, url, method, { token, body, scheme = "DPoP" } = {}) {
  let nonce;
  for (let attempt = 0; attempt < 2; attempt++) {
    const headers = { dpop: await generateProof(keyPair, url, method, nonce, token) };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (token !== undefined) headers.authorization = `${scheme} ${token}`;
    const response = await fetch(url, { method, headers, body });
    const next = response.headers.get("dpop-nonce");
    const answer = { status: response.status, body: await response.json(),
                     challenge: response.headers.get("www-authenticate"), headers };
    const wantsNonce = answer.body.error === "use_dpop_nonce";
    if (!wantsNonce || !next || attempt === 1) return answer;
    nonce = next;
  }
  throw new Error("unreachable");
}

async function dpopFlow({ base, alg, username }) {
  await register(base, username);
  const keyPair = await generateKeyPair(alg);
  const jkt = await calculateThumbprint(keyPair.publicKey);
  const login = await withProof(keyPair, `${base}/api/login`, "POST", {
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  const token = login.body.token;
  const me = await withProof(keyPair, `${base}/api/me`, "GET", { token });
  // The theft: the token copied to a client without the key.
  const asBearer = await fetch(`${base}/api/me`, { headers: { authorization: `Bearer ${token}` } });
  const thiefKeys = await generateKeyPair("ES256");
  const thief = await withProof(thiefKeys, `${base}/api/me`, "GET", { token });
  // A captured request sent again as it was.
  const replay = await fetch(`${base}/api/me`, { headers: me.headers });
  const out = {
    jkt,
    login: { status: login.status, token_type: login.body.token_type },
    me: { status: me.status, via: me.body.via, dpop_jkt: me.body.dpop_jkt },
    bearer: { status: asBearer.status, body: await asBearer.json(),
              challenge: asBearer.headers.get("www-authenticate") },
    thief: { status: thief.status, body: thief.body, challenge: thief.challenge },
    replay: { status: replay.status, body: await replay.json() },
  };
  if (login.body.refresh_token !== undefined) {
    const refresh = async (keys) => withProof(keys, `${base}/api/refresh`, "POST", {
      body: JSON.stringify({ refresh_token: login.body.refresh_token }),
    });
    const stolen = await refresh(thiefKeys);
    const renewed = await refresh(keyPair);
    const after = await withProof(keyPair, `${base}/api/me`, "GET", { token: renewed.body.token });
    out.refresh = {
      thief: { status: stolen.status, error: stolen.body.error },
      owner: { status: renewed.status, token_type: renewed.body.token_type },
      me: { status: after.status, dpop_jkt: after.body.dpop_jkt },
    };
  }
  return out;
}

// oauth4webapi's way: a DPoP handle that caches nonces, protectedResourceRequest for the
// API and refreshTokenGrantRequest against the demo's OAuth token endpoint.
async function oauthFlow({ base, alg, username }) {
  await register(base, username);
  const keyPair = await generateKeyPair(alg);
  const as = { issuer: base, token_endpoint: `${base}/api/token` };
  const client = { client_id: "coatcheck-interop" };
  const handle = oauth.DPoP(client, keyPair);
  const insecure = { [oauth.allowInsecureRequests]: true };
  // Log in with the same key (the demo's login is a password form, not an OAuth grant).
  const login = await withProof(keyPair, `${base}/api/login`, "POST", {
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  const resource = async (token, dpop) => {
    const url = new URL(`${base}/api/me`);
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await oauth.protectedResourceRequest(
          token, "GET", url, new Headers(), null, { DPoP: dpop, ...insecure });
        return { status: response.status, body: await response.json() };
      } catch (err) {
        if (oauth.isDPoPNonceError(err) && attempt === 0) continue;
        if (err instanceof oauth.WWWAuthenticateChallengeError) {
          return { status: err.response.status,
                   challenges: err.cause.map((c) => ({ scheme: c.scheme, ...c.parameters })) };
        }
        throw err;
      }
    }
  };
  const me = await resource(login.body.token, handle);
  const thiefHandle = oauth.DPoP(client, await generateKeyPair("ES256"));
  const thief = await resource(login.body.token, thiefHandle);
  const out = {
    jkt: await handle.calculateThumbprint(),
    login: { status: login.status, token_type: login.body.token_type },
    me: { status: me.status, via: me.body?.via, dpop_jkt: me.body?.dpop_jkt },
    thief,
  };
  if (login.body.refresh_token !== undefined) {
    const grant = async (dpop) => {
      for (let attempt = 0; ; attempt++) {
        const response = await oauth.refreshTokenGrantRequest(
          as, client, oauth.None(), login.body.refresh_token, { DPoP: dpop, ...insecure });
        try {
          return await oauth.processRefreshTokenResponse(as, client, response);
        } catch (err) {
          if (oauth.isDPoPNonceError(err) && attempt === 0) continue;
          return { error: err.error ?? err.code ?? String(err), status: response.status };
        }
      }
    };
    const stolen = await grant(thiefHandle);
    const renewed = await grant(handle);
    const after = renewed.access_token ? await resource(renewed.access_token, handle) : null;
    out.refresh = {
      thief: stolen.access_token ? { status: 200 } : stolen,
      owner: { token_type: renewed.token_type, has_refresh: typeof renewed.refresh_token },
      me: after && { status: after.status, dpop_jkt: after.body?.dpop_jkt },
    };
  }
  return out;
}

const ops = { "dpop.flow": dpopFlow, "oauth4webapi.flow": oauthFlow };

const input = JSON.parse(await new Promise((resolve) => {
  let data = "";
  process.stdin.on("data", (chunk) => (data += chunk));
  process.stdin.on("end", () => resolve(data));
}));
const results = [];
for (const op of input.ops) {
  try {
    results.push({ ok: await ops[op.op](op) });
  } catch (err) {
    results.push({ error: `${err?.name}: ${err?.message} ${JSON.stringify(err?.cause ?? "")}` });
  }
}
process.stdout.write(JSON.stringify(results));
