/* Inside the fake pixel sandbox: the globals Shopify gives a custom pixel.
 * analytics.subscribe(name | "all_standard_events" | "all_events", cb);
 * browser.cookie.get/set and browser.localStorage.getItem/setItem return
 * Promises and act on the top frame; init is the page snapshot. */
(function () {
  var subscribers = [], calls = {}, n = 0;
  var STANDARD = ["page_viewed", "product_viewed", "collection_viewed", "search_submitted",
                  "product_added_to_cart", "product_removed_from_cart", "cart_viewed",
                  "checkout_started", "checkout_address_info_submitted",
                  "checkout_contact_info_submitted", "checkout_shipping_info_submitted",
                  "payment_info_submitted", "checkout_completed"];
  function call(op) {
    var args = [].slice.call(arguments, 1);
    return new Promise(function (resolve) {
      var id = ++n;
      calls[id] = resolve;
      parent.postMessage({type: "call", id: id, op: op, args: args}, "*");
    });
  }
  self.analytics = {
    subscribe: function (name, cb) { subscribers.push({name: name, cb: cb}); }
  };
  self.browser = {
    cookie: {get: function (k) { return call("cookie.get", k); },
             set: function (a, b) { return call("cookie.set", a, b); }},
    localStorage: {getItem: function (k) { return call("localStorage.getItem", k); },
                   setItem: function (k, v) { return call("localStorage.setItem", k, v); }}
  };
  self.init = SHOPIFY_INIT;
  window.addEventListener("message", function (e) {
    var m = e.data;
    if (m.type === "result") {
      calls[m.id](m.result);
      delete calls[m.id];
    } else if (m.type === "event") {
      subscribers.forEach(function (s) {
        if (s.name === m.event.name || s.name === "all_events" ||
            (s.name === "all_standard_events" && STANDARD.indexOf(m.event.name) >= 0)) s.cb(m.event);
      });
    }
  });
})();
