/* pixel-server snippet: the ttq API (every platform but Shopify, whose pixel
 * sandbox shares no ttq with the page).
 *
 * Bundled after core.js, same scope. We never take `ttq` from TikTok's pixel:
 *
 * - TikTok's base code ran before us (`TiktokAnalyticsObject` set, or a ttq
 *   with TikTok's `methods` / `_i`): its global and queues stay as they are.
 *   We read what the page queued so far (the queue, then each pixel's queue
 *   in `_i`) without removing anything, and watch the object from then on.
 * - It did not: `ttq` becomes a queue of ours in TikTok's shape (our tag's
 *   stub, or a new array), whose methods do nothing but are watched. Should
 *   TikTok's base code come later, it adopts it (`w[t] = w[t] || []`), puts
 *   its own methods in through our setters and makes it its queue; our own
 *   TikTok pixel (tiktok.js, `P.tk`) is only loaded in this case.
 *
 * Watching: each method we care about becomes an accessor. Its setter keeps
 * what is assigned (the base code's stubs, later the live methods of TikTok's
 * library); its getter gives one wrapper that records the call with us, then
 * calls the current function with the same this and arguments and returns
 * what it returns (or throws what it throws). Calls nested in one (TikTok's
 * code calling itself, our mirroring through `fd`) are not recorded;
 * instance() objects are watched the same way. Mirroring our adapters' events
 * into TikTok's pixel happens only with the `m` setting.
 *
 * `tk` says that tq is TikTok's pixel's: then the ids core.js makes for the
 * page's calls (H up) are marked "ttq:", because TikTok's pixel sent those
 * events itself and the server must not forward our copies to TikTok.
 * docs/tiktok-pixel.md has the whole picture.
 */
var O = {
    page: () => pv(),
    track: (n, p, o) => track(n, Object.assign({}, p), o && o.event_id),
    identify: ident,
    instance: noop, // its objects are watched instead
  },
  sn = new WeakSet(), // objects watched already
  W = safe(
    (o) =>
      sn.has(o) ||
      (sn.add(o),
      Object.keys(O).forEach((m, f, g) => {
        f = o[m];
        g = function (r) {
          try {
            H++ || safe(O[m])(...arguments); // the outermost call only, recorded while H is up
            r = f.apply(this, arguments);
          } finally {
            H--;
          }
          m == "instance" && W(r);
          return r;
        };
        // Assigned after we watch: TikTok's base code has adopted our queue.
        Object.defineProperty(o, m, { configurable: 1, get: () => f && g, set: (v) => ((f = v), (tk = 1)) });
      }))
  ),
  // The calls queued in a TikTok queue (entries are arrays; other fields are not).
  queued = (q) => [].filter.call(q || [], Array.isArray);
C.forEach((m, c) => (O[m] = () => setC(c))); // holdConsent() and the others

P.tq = (cl, k) => {
  tk = w.TiktokAnalyticsObject;
  tq = w[tk || "ttq"] || [];
  tk = tk || tq.methods || tq._i; // TikTok's base code ran before us
  cl = queued(tq);
  for (k in tq._i) cl.push(...queued(tq._i[k]));
  if (!tk) {
    P.tk && P.tk();
    tq = w.ttq = Array.isArray(tq) ? tq : [];
    tq.length = 0; // our own queue: its calls are in cl
    for (k in O) tq[k] = noop;
    tq.instance = () => tq;
  }
  W(tq);
  // The automatic PageView first: the page loaded before its code called us.
  P.auto && !cl.some((a) => a[0] == "page") && pv();
  H++; // the page's calls, as if made now
  cl.forEach((a) => safe(O[a[0]])(...a.slice(1))); // calls we do not know: nothing
  H--;
  tk && S.m && (tt = tq); // mirroring our adapters' events, when asked
};
