/* A stand-in for Shopify's pixel manager, storefront side. It runs a custom
 * pixel the way Shopify does: in a sandboxed iframe (opaque origin: no access
 * to the store's DOM, URL, cookies or storage) whose code sees `analytics`,
 * `browser` and `init`. browser.cookie / browser.localStorage are
 * asynchronous and act on the top frame (here: through postMessage), and
 * standard events are published to the pixel's subscribers. Tests publish
 * events through window.shopifyFake. */
(function () {
  var frame, ready = false, pending = [], next = 1;

  function context() {
    return {document: {location: {href: location.href}, referrer: document.referrer,
                       title: document.title}};
  }
  function post(message) { frame.contentWindow.postMessage(message, "*"); }
  function cookie(name) {
    var m = document.cookie.match("(?:^|; )" + name + "=([^;]*)");
    return m ? decodeURIComponent(m[1]) : "";
  }
  var ops = {
    "cookie.get": function (name) { return cookie(name); },
    "cookie.set": function (a, b) { document.cookie = b === undefined ? a : a + "=" + b; return document.cookie; },
    "localStorage.getItem": function (k) { return localStorage.getItem(k); },
    "localStorage.setItem": function (k, v) { localStorage.setItem(k, v); }
  };

  window.addEventListener("message", function (e) {
    if (!frame || e.source !== frame.contentWindow) return;
    var m = e.data;
    if (m.type === "ready") {
      ready = true;
      pending.splice(0).forEach(function (ev) { post({type: "event", event: ev}); });
    } else if (m.type === "call") {
      post({type: "result", id: m.id, result: ops[m.op].apply(null, m.args)});
    }
  });

  window.shopifyFake = {
    start: function (store, pixelId, customer) {
      var init = {
        context: Object.assign(context(), {navigator: {language: navigator.language}}),
        data: {customer: customer || null,
               shop: {name: "Fake shop", paymentSettings: {currencyCode: "USD"}}}
      };
      frame = document.createElement("iframe");
      frame.setAttribute("sandbox", "allow-scripts");
      frame.style.display = "none";
      frame.srcdoc =
        "<!doctype html><html><head>" +
        "<script>var SHOPIFY_INIT = " + JSON.stringify(init).replace(/</g, "\\u003c") + ";<\/script>" +
        "<script src='" + store + "/pages/shopify-sandbox.js'><\/script>" +
        // The merchant's custom pixel code, from paste_instructions().
        "<script src='" + store + "/shopify/custom-pixel.js?px=" + pixelId + "'><\/script>" +
        "<script>parent.postMessage({type: 'ready'}, '*');<\/script>" +
        "</head><body></body></html>";
      document.body.appendChild(frame);
    },
    publish: function (name, data) {
      var ev = {id: "sh-" + (next++), name: name, type: "standard",
                timestamp: new Date().toISOString(), context: context(), data: data};
      if (ready) post({type: "event", event: ev});
      else pending.push(ev);
    },
    isReady: function () { return ready; },
    variant: {
      id: "41938360401976", sku: "SKU-1-RED-M", title: "Red / M",
      price: {amount: 8.0, currencyCode: "USD"},
      product: {id: "7424001", title: "Sweatshirt", vendor: "Acme", type: "Tops", untranslatedTitle: "Sweatshirt"}
    }
  };
  var v = window.shopifyFake.variant;
  window.shopifyFake.checkout = function (withOrder) {
    var c = {token: "ck_9f1c", currencyCode: "USD", email: "bob@example.com", phone: "+15551234567",
             totalPrice: {amount: 21.5, currencyCode: "USD"},
             subtotalPrice: {amount: 16.0, currencyCode: "USD"},
             lineItems: [{id: "li-1", quantity: 2, title: "Sweatshirt", variant: v,
                          finalLinePrice: {amount: 16.0, currencyCode: "USD"}}]};
    if (withOrder) c.order = {id: "gid://shopify/OrderIdentity/5396439498987"};
    return {checkout: c};
  };
})();
