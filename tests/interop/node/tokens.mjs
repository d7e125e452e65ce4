// JWTs and Auth.js tokens made and checked by the real Node packages.
// Reads {"ops": [{"op": ..., ...}, ...]} on stdin, writes [{"ok": ...} | {"error": ...}, ...].
import { createPrivateKey, createPublicKey, hkdfSync, sign, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import jsonwebtoken from "jsonwebtoken";
import * as jose from "jose";
import { decode, encode, getToken } from "@auth/core/jwt";
// SessionStore (the chunking code) is internal to @auth/core; load its file directly.
const { SessionStore } = await import(
  new URL("../node_modules/@auth/core/lib/utils/cookie.js", import.meta.url)
);

const quiet = { debug() {}, error() {}, warn() {} };

function nodeKey(spec) {
  if (spec.secret !== undefined) return Buffer.from(spec.secret, "utf8");
  if (spec.jwk.d !== undefined) return createPrivateKey({ key: spec.jwk, format: "jwk" });
  return createPublicKey({ key: spec.jwk, format: "jwk" });
}

async function joseKey(spec, alg) {
  if (spec.secret !== undefined) return new TextEncoder().encode(spec.secret);
  return jose.importJWK(spec.jwk, alg);
}

const bytes = (b64url) => Buffer.from(b64url, "base64url");
const b64url = (data) => Buffer.from(data).toString("base64url");

const v4Key = (secret) =>
  new Uint8Array(hkdfSync("sha256", secret, "", "NextAuth.js Generated Encryption Key", 32));

const ops = {
  "jsonwebtoken.sign": ({ payload, key, alg, kid }) =>
    jsonwebtoken.sign(payload, nodeKey(key), { algorithm: alg, keyid: kid }),
  "jsonwebtoken.verify": ({ token, key, algorithms }) =>
    jsonwebtoken.verify(token, nodeKey(key), { algorithms }),
  "jose.sign": async ({ payload, key, alg, kid }) =>
    new jose.SignJWT(payload).setProtectedHeader({ alg, kid, typ: "JWT" }).sign(await joseKey(key, alg)),
  "jose.verify": async ({ token, key, jwks, algorithms }) => {
    const k = jwks ? jose.createLocalJWKSet(jwks) : await joseKey(key, algorithms[0]);
    const { payload, protectedHeader } = await jose.jwtVerify(token, k, { algorithms });
    return { payload, header: protectedHeader };
  },
  // Any compact JWS / JWE, every algorithm jose has, keys as JWKs (issue 11).
  "jose.signCompact": async ({ payload, alg, kid, jwk }) =>
    new jose.CompactSign(bytes(payload))
      .setProtectedHeader({ alg, kid })
      .sign(await jose.importJWK(jwk, alg)),
  "jose.verifyCompact": async ({ token, jwk, jwks, algorithms }) => {
    const key = jwks ? jose.createLocalJWKSet(jwks) : await jose.importJWK(jwk, algorithms[0]);
    const { payload, protectedHeader } = await jose.compactVerify(token, key, { algorithms });
    return { payload: b64url(payload), header: protectedHeader };
  },
  "jose.encryptCompact": async ({ plaintext, alg, enc, kid, jwk, zip }) =>
    new jose.CompactEncrypt(bytes(plaintext))
      .setProtectedHeader(zip ? { alg, enc, kid, zip } : { alg, enc, kid })
      .encrypt(await jose.importJWK(jwk, alg)),
  "jose.decryptCompact": async ({ token, jwk, alg, enc }) => {
    const key = await jose.importJWK(jwk, alg);
    const { plaintext, protectedHeader } = await jose.compactDecrypt(token, key, {
      keyManagementAlgorithms: [alg],
      contentEncryptionAlgorithms: [enc],
    });
    return { plaintext: b64url(plaintext), header: protectedHeader };
  },
  // jose has no Ed448; Node's own crypto signs and verifies raw Ed448 (RFC 8032).
  "node.ed448.sign": ({ input, jwk }) =>
    b64url(sign(null, Buffer.from(input, "ascii"), createPrivateKey({ key: jwk, format: "jwk" }))),
  "node.ed448.verify": ({ input, signature, jwk }) =>
    verify(null, Buffer.from(input, "ascii"), createPublicKey({ key: jwk, format: "jwk" }),
      bytes(signature)),
  "authjs.encode": ({ token, secret, salt, maxAge }) => encode({ token, secret, salt, maxAge }),
  "authjs.decode": ({ token, secret, salt }) => decode({ token, secret, salt }),
  "authjs.getToken": async ({ cookie, authorization, secret, cookieName }) => {
    const headers = {};
    if (cookie) headers.cookie = cookie;
    if (authorization) headers.authorization = authorization;
    return getToken({ req: { headers }, secret, cookieName, salt: cookieName, logger: quiet });
  },
  "authjs.chunk": ({ name, value }) => {
    const store = new SessionStore({ name, options: {} }, {}, quiet);
    return store.chunk(value, {}).map((c) => [c.name, c.value]);
  },
  // NextAuth v4's encode/decode (packages/next-auth/src/jwt/index.ts); @auth/core dropped them.
  "nextauth4.decode": async ({ token, secret }) =>
    (await jose.jwtDecrypt(token, v4Key(secret), { clockTolerance: 15 })).payload,
  "nextauth4.encode": ({ token, secret, maxAge }) => {
    const key = v4Key(secret);
    const now = (Date.now() / 1000) | 0;
    return new jose.EncryptJWT(token)
      .setProtectedHeader({ alg: "dir", enc: "A256GCM" })
      .setIssuedAt()
      .setExpirationTime(now + maxAge)
      .setJti(crypto.randomUUID())
      .encrypt(key);
  },
};

const request = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const { op, ...args } of request.ops) {
  try {
    const value = await ops[op](args);
    results.push({ ok: value === undefined ? null : value });
  } catch (error) {
    results.push({ error: String(error?.code ?? error?.name ?? "Error") + ": " + error?.message });
  }
}
process.stdout.write(JSON.stringify(results));
