/* pixel-server snippet: core.
 *
 * Assembled by pixel_server/snippets.py as
 *
 *   !function (w, S) { "use strict"; try { if (already loaded) return;
 *     <core.js> [<tiktok.js>] [<commerce.js>] try { <adapters/PLATFORM.js> }
 *     catch (e) {} P.go() } catch (e) {} }(self, SETTINGS)
 *
 * `w` is the global object (window, or the sandbox's global on Shopify) and
 * `S` the pixel's settings: {pixel_id, endpoint, platform, click_window_days,
 * consent: "granted"|"hold", tiktok_pixel_code, currency}. The adapter runs
 * after this file, in the same scope, and talks to `P`.
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
  queue = [], // events waiting for identity, consent or the next flush
  user = {}, // ttq.identify() fields, copied into every later event
  consent = S.consent == "hold" ? 1 : 0, // 0 granted, 1 held (queued), 2 revoked (dropped)
  ids, // {anonymous_id, ttclid, ttp} once storage has answered
  clickId, // ttclid of this landing URL, stored once consent allows
  due, // a flush is scheduled
  tt, // TikTok's own pixel queue (tiktok.js), fed the same event_ids
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
      if (consent > 1 || !name) return;
      o = (props = props || {}).order_id;
      if (o != un && /^(Purchase|CompletePayment)$/.test(name)) {
        o = props.order_id = ("" + o).trim().replace(/^gid:[^?]*\/([^/?]+).*/, "$1");
        id = id || (o && "purchase:" + o);
      }
      id = id ? "" + id : hex(16);
      page = page || P.loc();
      queue.push({
        event: "" + name,
        event_id: id,
        event_time: (at || Date.now()) / 1e3,
        user: Object.assign({ locale: nav.language }, user),
        properties: props,
        page, // {url, referrer}
        consent: "granted",
      });
      tt && (name == "PageView" ? tt.page() : tt.track(name, props, { event_id: id }));
      due = due || Promise.resolve().then(flush); // one batch per task
    },

    page: (page, at) => P.track("PageView", {}, 0, page, at),

    identify(o, v, k) {
      o = o || {};
      v = { email: o.email, phone: o.phone_number || o.phone, external_id: o.external_id };
      for (k in v) if (v[k] || v[k] === 0) user[k] = "" + v[k]; // the server normalises and hashes
      tt && tt.identify(o);
    },
  };

// Send what may be sent: at most 50 events and 64 KB per request.
var flush = safe(() => {
  due = 0;
  if (!ids || consent) return;
  var t = P.store.get("_ttp"), // TikTok's pixel may have set it since we started
    head = '{"pixel_id":' + JSON.stringify(S.pixel_id) + ',"events":[',
    batch = [],
    used = 0,
    ev, s, n;
  if (t && !t.then) ids.ttp = t;
  while ((ev = queue.shift()))
    try {
      Object.assign(ev.user, ids);
      n = new Blob([(s = JSON.stringify(ev))]).size + 1; // throws on odd properties: drops that event
      if (batch.length > 49 || used + n > 63e3) send(head, batch), (batch = []), (used = 0);
      if (n < 63e3) batch.push(s), (used += n); // 63 KB of events + head < 64 KB
    } catch (e) {}
  send(head, batch);
});

var send = safe((head, batch) => {
  var url = S.endpoint + "/collect?p=" + encodeURIComponent(S.pixel_id), // endpoint: no trailing slash
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
function persist() {
  if (consent || !ids) return;
  P.store.set("_px_aid", ids.anonymous_id, 395); // 13 months, renewed on every page
  clickId && P.store.set("_px_ttclid", clickId, S.click_window_days);
  clickId = 0;
}

function setConsent(c) {
  consent = c;
  if (c > 1) queue = [];
  persist();
  flush();
  tt && tt[["grantConsent", "holdConsent", "revokeConsent"][c]]();
}

// The ttq API that store code written for TikTok's pixel calls.
var api = {};
M.forEach((m) => (api[m] = noop));
Object.assign(api, {
  load: noop,
  instance: () => api,
  page: () => P.page(),
  track: (name, props, opts) => P.track(name, Object.assign({}, props), opts && opts.event_id),
  identify: P.identify,
  holdConsent: () => setConsent(1),
  grantConsent: () => setConsent(0),
  revokeConsent: () => setConsent(2),
  // Through our own table: TikTok's base code, pasted after us, would replace
  // the methods with stubs that push.
  push: (a) => a[0] != "push" && own[a[0]].apply(api, [].slice.call(a, 1)),
});
for (var m in api) api[m] = safe(api[m]);
var own = Object.assign({}, api);
api._px = 1;

P.go = safe((old, calls) => {
  // Identity; the landing URL's ttclid wins over the stored one.
  try {
    clickId = new URL(P.loc().url).searchParams.get("ttclid");
  } catch (e) {}
  Promise.all([P.store.get("_px_aid"), clickId || P.store.get("_px_ttclid"), P.store.get("_ttp")])
    .catch(noop)
    .then(
      safe((v) => {
        v = v || [];
        ids = { anonymous_id: v[0] || "a_" + hex(16), ttclid: v[1] || un, ttp: v[2] || un };
        persist();
        flush();
      })
    );

  // Take over TikTok's base-code queue: replay what the page called before we
  // loaded, in order, and make the old stub forward to us.
  old = w.ttq || [];
  calls = [].filter.call(old, Array.isArray);
  w.ttq = api;
  try {
    Object.assign(old, api);
  } catch (e) {}
  // The automatic PageView first: the page loaded before its code called us.
  P.auto && !calls.some((a) => a[0] == "page") && P.page();
  calls.forEach(api.push);

  w.addEventListener("pagehide", flush);
  d && d.addEventListener("visibilitychange", () => d.hidden && flush());
  safe(P.run)();
});
