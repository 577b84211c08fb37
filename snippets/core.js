/* pixel-server snippet: core.
 *
 * Assembled by pixel_server/snippets.py as
 *
 *   !function (w, S) { "use strict"; try { if (already loaded) return;
 *     <core.js> [<tiktok.js>] [<commerce.js>] try { <adapters/PLATFORM.js> }
 *     catch (e) {} P.go() } catch (e) {} }(self, SETTINGS)
 *
 * `w` is the global object (window, or the sandbox's global on Shopify) and
 * `S` the pixel's settings, with short keys (pixel_server/snippets.py,
 * `settings_json`): i pixel id, u collect URL, d click window days, h consent
 * held, t TikTok pixel code, m mirror to TikTok's pixel, c currency; a false
 * or empty setting is left out. The adapter runs after this file, in the same
 * scope, and talks to `P`.
 *
 * House rules, because this runs inside other people's stores:
 * - nothing may throw into the page: every entry point goes through `safe`;
 * - nothing leaves the browser, and nothing is written to cookies or storage,
 *   while consent is held or revoked;
 * - small: rjsmin only strips whitespace and comments, so the code itself is
 *   terse. Budget: core <= 2 KB gzipped (docs/benchmarks.md, "Snippet size");
 * - ES2017 syntax at most (no ?. or ??): old phones shop too.
 */
var d = w.document,
  nav = w.navigator || {},
  noop = () => {},
  // Every method of TikTok's base-code stub: our ttq answers all of them.
  M = "page track identify instances debug on off once ready alias group enableCookie disableCookie holdConsent revokeConsent grantConsent".split(" "),
  Q = [], // events waiting for identity, consent or the next flush
  user = {}, // ttq.identify() fields, copied into every later event
  cs = S.h ? 1 : 0, // 0 granted, 1 held (queued), 2 revoked (dropped)
  ids, // {anonymous_id, ttclid, ttp} once storage has answered
  ck, // ttclid of this landing URL, stored once consent allows
  due, // a flush is scheduled
  tq, // the page's ttq: TikTok's, or ours until TikTok's base code adopts it
  tt, // a TikTok pixel fed the same event_ids: ours (tiktok.js) or, mirroring, tq
  H = 0, // > 0 while a tq method runs: calls nested in it are not the page's
  un; // undefined: JSON.stringify leaves such fields out

function safe(f) {
  return function () {
    try {
      return f.apply(this, arguments);
    } catch (e) {}
  };
}

var hex = (n) => [].map.call(w.crypto.getRandomValues(new Uint8Array(n)), (b) => (b + 256).toString(16).slice(1)).join(""),
  P = {
    auto: 1, // send a PageView on start (single-page storefronts turn this off)
    run: noop, // the adapter's start-up, called once ttq is in place

    // The page an event belongs to; Shopify's sandbox replaces this.
    loc: () => ({ url: w.location.href, referrer: d.referrer }),

    // localStorage keeps "value|expiry ms"; cookies carry their own max-age.
    pack: (v, days) => v + "|" + (Date.now() + days * 864e5),
    unpack: (s) => ((s = /(.*)\|(\d+)$/.exec(s)) && s[2] > Date.now() ? s[1] : ""),
    cookie: (k, v, days) => k + "=" + encodeURIComponent(v) + "; max-age=" + days * 86400 + "; path=/; SameSite=Lax",

    // First-party storage: a cookie, and localStorage as the second copy.
    // get() may return a Promise (Shopify's browser.* APIs are asynchronous).
    store: {
      get: safe((k) => {
        var m = d.cookie.match("(^|; )" + k + "=([^;]*)");
        return m ? decodeURIComponent(m[2]) : P.unpack(w.localStorage.getItem(k));
      }),
      set: safe((k, v, days) => {
        d.cookie = P.cookie(k, v, days);
        w.localStorage.setItem(k, P.pack(v, days));
      }),
    },

    // Purchases with an order_id share their event_id with the server's
    // webhook copy: purchase:<order id>, a Shopify GID cut to its numeric tail.
    track(name, props, id, page, at, o) {
      if (cs > 1 || !name) return;
      o = (props = props || {}).order_id;
      if (o != un && /^(Purchase|CompletePayment)$/.test(name)) {
        o = props.order_id = ("" + o).trim().replace(/^gid:[^?]*\/([^/?]+).*/, "$1");
        id = id || (o && "purchase:" + o);
      }
      id = id ? "" + id : hex(16);
      page = page || P.loc();
      Q.push({
        event: "" + name,
        event_id: id,
        event_time: (at || Date.now()) / 1e3,
        user: Object.assign({ locale: nav.language }, user),
        properties: props,
        page, // {url, referrer}
        consent: "granted",
      });
      name == "PageView" ? fd("page") : fd("track", name, props, { event_id: id });
      due = due || Promise.resolve().then(fl); // one batch per task
    },

    page: (page, at) => P.track("PageView", {}, 0, page, at),

    identify(o, v, k) {
      o = o || {};
      v = { email: o.email, phone: o.phone_number || o.phone, external_id: o.external_id };
      for (k in v) if (v[k] || v[k] === 0) user[k] = "" + v[k]; // the server normalises and hashes
      fd("identify", o);
    },
  };

// Send what may be sent: at most 50 events and 64 KB per request.
var fl = safe(() => {
  due = 0;
  if (!ids || cs) return;
  var t = P.store.get("_ttp"), // TikTok's pixel may have set it since we started
    head = '{"pixel_id":' + JSON.stringify(S.i) + ',"events":[',
    batch = [],
    used = 0,
    ev, s, n;
  if (t && !t.then) ids.ttp = t;
  while ((ev = Q.shift()))
    try {
      Object.assign(ev.user, ids);
      n = new Blob([(s = JSON.stringify(ev))]).size + 1; // throws on odd properties: drops that event
      if (batch.length > 49 || used + n > 63e3) snd(head, batch), (batch = []), (used = 0);
      if (n < 63e3) batch.push(s), (used += n); // 63 KB of events + head < 64 KB
    } catch (e) {}
  snd(head, batch);
});

var snd = safe((head, batch) => {
  var url = S.u,
    body = head + batch + "]}", // an array joins with commas
    post = (keepalive) => fetch(url, { method: "POST", body, keepalive, mode: "cors", credentials: "omit" }),
    ok;
  if (!batch.length) return;
  try {
    ok = nav.sendBeacon(url, body);
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
  fd(["grantConsent", "holdConsent", "revokeConsent"][c]);
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

// What a ttq call means to us.
var rp = safe((a) => Array.isArray(a) && a[0] != "push" && O[a[0]] && O[a[0]](...a.slice(1))),
  O = {
    page: () => P.page(),
    track: (name, props, opts) => P.track(name, Object.assign({}, props), opts && opts.event_id),
    identify: P.identify,
    holdConsent: () => setC(1),
    grantConsent: () => setC(0),
    revokeConsent: () => setC(2),
    push: (...a) => a.forEach(rp),
  },
  sn = new WeakSet();
for (var m in O) O[m] = safe(O[m]);

// We never take ttq: we watch it. Each method becomes an accessor whose setter
// keeps what is assigned (the base code's stubs, TikTok's live methods later)
// and whose getter gives one wrapper: it records the call with us, then calls
// the current function with the same this and arguments and returns what it
// returns (or throws what it throws). Calls nested in one, and our mirroring,
// are not recorded. instance() objects are watched the same way.
var W = safe(
  (o) =>
    sn.has(o) ||
    (sn.add(o),
    M.concat("instance", "push").forEach((m, f, g) => {
      f = o[m];
      g = function (r) {
        if (H) return f.apply(this, arguments);
        try {
          H++;
          O[m] && O[m].apply(0, arguments);
          r = f.apply(this, arguments);
          m == "instance" && W(r);
          return r;
        } finally {
          H--;
        }
      };
      Object.defineProperty(o, m, { configurable: true, enumerable: true, get: () => f && g, set: (v) => (f = v) });
    }))
);

P.go = safe((n, cl) => {
  // Identity; the landing URL's ttclid wins over the stored one.
  try {
    ck = new URL(P.loc().url).searchParams.get("ttclid");
  } catch (e) {}
  Promise.all([P.store.get("_px_aid"), ck || P.store.get("_px_ttclid"), P.store.get("_ttp")])
    .catch(noop)
    .then(
      safe((v) => {
        v = v || [];
        ids = { anonymous_id: v[0] || "a_" + hex(16), ttclid: v[1] || un, ttp: v[2] || un };
        keep();
        fl();
      })
    );

  // TikTok's base code ran before us: its global and queue stay as they are.
  // Otherwise ttq is a queue of ours in TikTok's shape (our tag's stub, or a
  // new one) whose methods do nothing but get recorded; TikTok's base code,
  // should it come later, adopts it (`w[t] = w[t] || []`) and puts its own
  // methods in, which we keep watching.
  n = w.TiktokAnalyticsObject;
  tq = w[n || "ttq"];
  if (!(n || (tq && (tq.methods || tq._i)))) {
    P.tk && P.tk();
    tq = w.ttq = Array.isArray(tq) ? tq : [];
    M.forEach((m) => (tq[m] = noop));
    tq.instance = () => tq;
    tq.load = noop;
    n = 0;
  }
  // What the page called before we loaded, in order, read and left in place:
  // the queue, then its instances' queues.
  cl = [].filter.call(tq, Array.isArray);
  for (var k in tq._i) cl = cl.concat([].filter.call(tq._i[k] || [], Array.isArray));
  n || (tq.length = 0); // our own queue: done with
  W(tq);
  // The automatic PageView first: the page loaded before its code called us.
  P.auto && !cl.some((a) => a[0] == "page") && P.page();
  cl.forEach(rp);
  // Mirroring our adapters' events into TikTok's pixel, when asked.
  n && S.m && (tt = tq);

  w.addEventListener("pagehide", fl);
  d && d.addEventListener("visibilitychange", () => d.hidden && fl());
  safe(P.run)();
});
