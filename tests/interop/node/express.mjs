// express-session (+ connect-redis, cookie-parser, cookie, cookie-signature) driven for the tests.
// Reads {"ops": [{"op": ..., ...}, ...]} on stdin, writes [{"ok": ...} | {"error": ...}, ...].
import { readFileSync } from "node:fs";
import cookie from "cookie";
import cookieParser from "cookie-parser";
import signature from "cookie-signature";
import express from "express";
import session from "express-session";
import { RedisStore } from "connect-redis";
import { createClient } from "redis";

const apps = new Map(); // one Express app per (redis url, prefix, secrets, name)

async function app({ redisUrl, prefix, secrets, name = "connect.sid", maxAge = 86400000 }) {
  const id = JSON.stringify([redisUrl, prefix, secrets, name, maxAge]);
  if (apps.has(id)) return apps.get(id);
  const client = createClient({ url: redisUrl });
  await client.connect();
  const server = express();
  server.use(cookieParser(secrets));
  server.use(
    session({
      name,
      secret: secrets,
      store: new RedisStore({ client, prefix }),
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge, httpOnly: true, sameSite: "lax" },
    }),
  );
  server.post("/login", express.json(), (req, res) => {
    Object.assign(req.session, req.body);
    res.json({ sid: req.sessionID });
  });
  server.get("/me", (req, res) => {
    if (req.session.userId === undefined) return res.status(401).json({ sid: req.sessionID });
    res.json({ sid: req.sessionID, session: req.session });
  });
  const listener = await new Promise((resolve) => {
    const l = server.listen(0, "127.0.0.1", () => resolve(l));
  });
  const entry = { client, listener, base: `http://127.0.0.1:${listener.address().port}` };
  apps.set(id, entry);
  return entry;
}

const ops = {
  "signature.sign": ({ value, secret }) => signature.sign(value, secret),
  "signature.unsign": ({ value, secrets }) => {
    for (const s of secrets) {
      const v = signature.unsign(value, s);
      if (v !== false) return v;
    }
    return false;
  },
  "cookie.parse": ({ headers }) => headers.map((h) => cookie.parse(h)),
  "cookie.serialize": ({ name, value, options }) => cookie.serialize(name, value, options ?? {}),
  "cookieParser.signed": ({ header, secrets }) => {
    const req = { headers: { cookie: header } };
    return new Promise((resolve) =>
      cookieParser(secrets)(req, {}, () => resolve({ cookies: req.cookies, signed: req.signedCookies })),
    );
  },
  "express.login": async ({ data, ...config }) => {
    const { base } = await app(config);
    const response = await fetch(`${base}/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(data),
    });
    return { status: response.status, body: await response.json(), setCookie: response.headers.getSetCookie() };
  },
  "express.me": async ({ cookie: header, ...config }) => {
    const { base } = await app(config);
    const response = await fetch(`${base}/me`, { headers: { cookie: header } });
    return { status: response.status, body: await response.json() };
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
for (const { client, listener } of apps.values()) {
  listener.close();
  await client.quit();
}
process.stdout.write(JSON.stringify(results));
