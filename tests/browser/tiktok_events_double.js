/* A test double of TikTok's events.js, served by the test store at
 * /tiktok/events.js; the tests route TikTok's URL
 * (https://analytics.tiktok.com/i18n/pixel/events.js?sdkid=CODE&lib=NAME)
 * to it, now, later or never.
 *
 * Modelled, from TikTok's base code and what its loader is seen to do with
 * the base code's structures:
 * - it finds its object as window[window.TiktokAnalyticsObject || "ttq"]
 *   (creating an empty queue if there is none) and writes its own fields on
 *   that same object (_env), never replacing it;
 * - it marks its pixel code (sdkid) in _i as loaded (_load);
 * - it replays the calls queued so far, in order: those on the object, then
 *   each pixel's in _i[code], by handling them itself (not by calling the
 *   object's public methods) and leaves the queues as they are;
 * - then it replaces the methods on the same object, by plain assignment,
 *   with live ones, and instance() with one returning objects whose methods
 *   are live too.
 * Every call it handles is appended to window.tiktokLibrary.calls as
 * [pixel code or "", method, ...arguments], arguments as received (the
 * objects themselves), which is what a test reads.
 *
 * Not modelled: anything TikTok's library sends, its cookies (_ttp), its
 * second script (the main library it loads from its CDN), consent handling,
 * events it fires by itself, and whether the real one empties its queue.
 */
(function (w) {
  var name = w.TiktokAnalyticsObject || "ttq",
    q = w[name] || (w[name] = []),
    code = new URL(document.currentScript.src).searchParams.get("sdkid"),
    lib = (w.tiktokLibrary = { name: name, code: code, calls: [] }),
    methods = q.methods || ["page", "track", "identify"],
    handle = function (pixel, entry) {
      lib.calls.push([pixel].concat(entry));
    },
    live = function (o, pixel) {
      methods.forEach(function (m) {
        o[m] = function () {
          handle(pixel, [m].concat([].slice.call(arguments)));
        };
      });
      return o;
    };
  q._env = { env: "test-double" };
  q._i = q._i || {};
  q._i[code] = q._i[code] || [];
  q._i[code]._load = Date.now();
  [].forEach.call(q, function (e) {
    Array.isArray(e) && handle("", e);
  });
  Object.keys(q._i).forEach(function (c) {
    [].forEach.call(q._i[c], function (e) {
      Array.isArray(e) && handle(c, e);
    });
  });
  live(q, "");
  q.instance = function (c) {
    return live(q._i[c] || (q._i[c] = []), c);
  };
})(window);
