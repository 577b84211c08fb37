/* Just enough of jQuery for WooCommerce's events (no CDN in tests):
 * $(el).on(type, fn), $(el).trigger(type, [args]), $(el).data(key). Handlers
 * get (event, ...args) like jQuery's; data() turns numeric strings into
 * numbers like jQuery's. */
(function () {
  function Q(el) { this[0] = el; this.length = 1; }
  Q.prototype.on = function (type, fn) {
    var h = this[0].__handlers = this[0].__handlers || {};
    (h[type] = h[type] || []).push(fn);
    return this;
  };
  Q.prototype.trigger = function (type, args) {
    var el = this[0], ev = {type: type, target: el};
    ((el.__handlers || {})[type] || []).forEach(function (fn) { fn.apply(el, [ev].concat(args || [])); });
    return this;
  };
  Q.prototype.data = function (key) {
    var v = this[0].getAttribute("data-" + key);
    return v !== null && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
  };
  window.jQuery = window.$ = function (el) { return new Q(el); };
})();
