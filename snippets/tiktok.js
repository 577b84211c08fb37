/* pixel-server snippet: TikTok's own browser pixel (optional module).
 *
 * Bundled after core.js only when the pixel's settings carry a TikTok pixel
 * code (`S.t`; never for Shopify's sandbox). ttq.js calls P.tk only when the
 * page has no TikTok pixel of its own (a store that has one keeps it). It
 * loads TikTok's events.js the way TikTok's base code does, but under its own
 * global (`_pxttq`, passed as `lib=`) because `ttq` is ours;
 * every event the core tracks is handed on with the same event_id ("browser
 * + server" mode, so TikTok deduplicates the two copies). If TikTok's script
 * cannot load, the calls just stay in its queue.
 */
P.tk = () => {
  if (!d) return;
  // Every method of TikTok's base-code stub.
  let M = "page track identify instances debug on off once ready alias group enableCookie disableCookie holdConsent revokeConsent grantConsent".split(" "),
    n = "_pxttq",
    u = "https://analytics.tiktok.com/i18n/pixel/events.js",
    code = S.t,
    t = (w[n] = []),
    s = d.createElement("script"),
    defer = (o, m) =>
      (o[m] = function () {
        o.push([m].concat([].slice.call(arguments)));
      });
  t.methods = M;
  M.forEach((m) => defer(t, m));
  t.instance = (c) => {
    var e = t._i[c] || [];
    M.forEach((m) => defer(e, m));
    return e;
  };
  t._i = { [code]: [] };
  t._i[code]._u = u;
  t._t = { [code]: Date.now() };
  t._o = { [code]: {} };
  w.TiktokAnalyticsObject = n;
  s.async = true;
  s.src = u + "?sdkid=" + encodeURIComponent(code) + "&lib=" + n;
  (d.head || d.documentElement).appendChild(s);
  if (cs) t.holdConsent();
  tt = t;
};
