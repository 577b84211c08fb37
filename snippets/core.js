/* pixel-server snippet: core.
 *
 * Assembled by pixel_server/snippets.py as
 *
 *   !function (w, S) { "use strict"; try { if (already loaded) return;
 *     <core.js> [<ttq.js>] [<tiktok.js>] [<commerce.js>]
 *     try { <adapters/PLATFORM.js> } catch (e) {} P.go() } catch (e) {} }(self, SETTINGS)
 *
 * `w` is the global object (window, or the sandbox's global on Shopify) and
 * `S` the pixel's settings, with short keys (pixel_server/snippets.py,
 * `settings_json`): i pixel id, u collect URL, d click window days, h consent
 * held, t TikTok pixel code, m mirror to TikTok's pixel, c currency; a false
 * or empty setting is left out. The adapter runs after this file, in the same
 * scope, and talks to `P` (what an adapter may set or
 * replace) and calls track(), pv() (a PageView) and ident() (identify).
 *
 * House rules, because this runs inside other people's stores:
 * - nothing may throw into the page: every entry point goes through `safe`;
 * - nothing leaves the browser, and nothing is written to cookies or storage,
 *   while consent is held or revoked;
 * - small: the whole script is minified as one program (tdewolff's minifier,
 *   which shortens every local name), but property names stay, so the code
 *   itself is terse. Budgets: core <= 2 KB gzipped, the served script <= 3 KB
 *   (docs/benchmarks.md, "Snippet size");
 * - ES2017 syntax at most (no ?. or ??): old phones shop too.
 */
var d = w.document,
  nav = w.navigator, // in a worker too (Shopify), without sendBeacon
  noop = () => {},
  Q = [], // events waiting for identity, consent or the next flush
  user = {}, // ttq.identify() fields, copied into every later event
  cs = S.h | 0, // 0 granted, 1 held (queued), 2 revoked (dropped)
  ids, // {anonymous_id, ttclid, ttp} once storage has answered
  ck, // ttclid of this landing URL, stored once consent allows
  due, // a flush is scheduled
  tq, // the page's ttq (ttq.js)
  tk, // tq is TikTok's pixel's (ttq.js)
  tt, // a TikTok pixel fed the same event_ids: ours (tiktok.js) or, mirroring, tq
  H = 0, // > 0 while the page's ttq call is handled (ttq.js): calls nested in it are not the page's
  C = ["grantConsent", "holdConsent", "revokeConsent"], // ttq's names for consent 0, 1, 2
  un; // undefined: JSON.stringify leaves such fields out

function safe(f) {
  return function () {
    try {
      return f.apply(this, arguments);
    } catch (e) {}
  };
}

var hex = () => [].map.call(w.crypto.getRandomValues(new Uint8Array(16)), (b) => (b + 256).toString(16).slice(1)).join(""),
  P = {
    auto: 1, // send a PageView on start (single-page storefronts turn this off)
    run: noop, // the adapter's start-up, called once ttq is in place

    // The page an event belongs to; Shopify's sandbox replaces this.
    loc: () => ({ url: w.location.href, referrer: d.referrer }),

    // First-party storage: a cookie, and localStorage as the second copy,
    // which keeps "value|expiry ms" (cookies carry their own max-age).
    // get() may return a Promise (Shopify's adapter replaces the store with
    // its sandbox's asynchronous browser.* APIs, in the same formats).
    store: {
      get: safe((k, m) =>
        (m = d.cookie.match("(^|; )" + k + "=([^;]*)"))
          ? decodeURIComponent(m[2])
          : (m = /(.*)\|(\d+)$/.exec(w.localStorage.getItem(k))) && m[2] > Date.now() ? m[1] : ""
      ),
      set: safe((k, v, t) => {
        d.cookie = k + "=" + encodeURIComponent(v) + "; max-age=" + t * 86400 + "; path=/; SameSite=Lax";
        w.localStorage.setItem(k, v + "|" + (Date.now() + t * 864e5));
      }),
    },
  };

// Purchases with an order_id share their event_id with the server's
// webhook copy: purchase:<order id>, a Shopify GID cut to its numeric tail.
function track(nm, p, id, page, at, o) {
  if (cs > 1 || !nm) return;
  o = (p = p || {}).order_id;
  if (o != un && /^(Purchase|CompletePayment)$/.test(nm)) {
    o = p.order_id = ("" + o).trim().replace(/^gid:[^?]*\/([^/?]+).*/, "$1");
    id = id || (o && "purchase:" + o);
  }
  // Our id for a call the page made on TikTok's own pixel (which sent
  // its own copy) is marked: the server never forwards it to TikTok.
  id = id ? "" + id : (H && tk ? "ttq:" : "") + hex();
  page = page || P.loc();
  Q.push({
    event: "" + nm,
    event_id: id,
    event_time: (at || Date.now()) / 1e3,
    user: Object.assign({ locale: nav.language }, user),
    properties: p,
    page, // {url, referrer}
    consent: "granted",
  });
  nm == "PageView" ? fd("page") : fd("track", nm, p, { event_id: id });
  due = due || Promise.resolve().then(fl); // one batch per task
}

var pv = (page, at) => track("PageView", {}, 0, page, at);

function ident(o, v, k) {
  v = { email: o.email, phone: o.phone_number || o.phone, external_id: o.external_id };
  for (k in v) if (v[k] || v[k] === 0) user[k] = "" + v[k]; // the server normalises and hashes
  fd("identify", o);
}

// Page listeners for forms.js and the adapters: capturing, so a page's
// stopPropagation() hides nothing; q() is querySelector.
var on = (t, f) => d.addEventListener(t, safe(f), !0),
  q = (s, r) => (r || d).querySelector(s);

// Send what may be sent: at most 50 events and 64 KB per request.
var fl = safe(() => {
  due = 0;
  if (!ids || cs) return;
  var t = P.store.get("_ttp"), // TikTok's pixel may have set it since we started
    bt = [],
    us = 0,
    ev, s, n;
  t && !t.then && (ids.ttp = t);
  while ((ev = Q.shift()))
    try {
      Object.assign(ev.user, ids);
      n = new Blob([(s = JSON.stringify(ev))]).size + 1; // throws on odd properties: drops that event
      if (bt.length > 49 || us + n > 63e3) snd(bt), (bt = []), (us = 0);
      if (n < 63e3) bt.push(s), (us += n); // 63 KB of events + head < 64 KB
    } catch (e) {}
  snd(bt);
});

var snd = safe((bt, ok) => {
  var body = '{"pixel_id":' + JSON.stringify(S.i) + ',"events":[' + bt + "]}", // an array joins with commas
    post = (keepalive) => fetch(S.u, { method: "POST", body, keepalive, credentials: "omit" }); // cors: the default
  if (!bt.length) return;
  try {
    ok = nav.sendBeacon(S.u, body);
  } catch (e) {}
  // No beacon, or over the browser's beacon quota: a keepalive fetch, and a
  // plain one if keepalive is refused too. Failures stay silent.
  ok || post(true).catch(() => post(false)).catch(noop);
});

// Identifiers are written only while consent allows it.
function keep() {
  if (cs || !ids) return;
  P.store.set("_px_aid", ids.anonymous_id, 395); // 13 months, renewed on every page
  ck && P.store.set("_px_ttclid", ck, S.d);
  ck = 0;
}

function setC(c) {
  cs = c;
  if (c > 1) Q = [];
  keep();
  fl();
  fd(C[c]);
}

// Calls into the TikTok pixel we feed; tq must not take our own calls for
// the page's, nor get back what the page gave it.
function fd(m, ...a) {
  if (tt && !(H && tt == tq))
    try {
      H++;
      tt[m](...a);
    } finally {
      H--;
    }
}

P.go = safe(() => {
  // Identity; the landing URL's ttclid wins over the stored one.
  ck = safe(() => new URL(P.loc().url).searchParams.get("ttclid"))();
  Promise.all(["_px_aid", "_px_ttclid", "_ttp"].map(P.store.get))
    .catch(noop)
    .then(
      safe((v) => {
        v = v || [];
        ids = { anonymous_id: v[0] || "a_" + hex(), ttclid: ck || v[1] || un, ttp: v[2] || un };
        keep();
        fl();
      })
    );
  // The ttq API (ttq.js) decides about the automatic PageView: the page's own
  // queued ttq.page() stands for it.
  P.tq ? P.tq() : P.auto && pv();

  // Leaving, or hidden (mobiles may never fire pagehide): send what is queued.
  // visibilitychange bubbles from the document to the window.
  ["pagehide", "visibilitychange"].forEach((e) => w.addEventListener(e, fl));
  safe(P.run)();
});
