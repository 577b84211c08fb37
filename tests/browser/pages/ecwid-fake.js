/* A stand-in for Ecwid's storefront JS API (the documented surface only):
 * Ecwid.OnAPILoaded / OnPageLoaded / OnCartChanged / OnOrderPlaced /
 * OnSetProfile .add(fn),
 * Ecwid.Cart.get(cb). The cart lives in sessionStorage, like a real cart
 * survives a page load. Tests drive it through window.ecwidFake. */
(function () {
  var hooks = {OnAPILoaded: [], OnPageLoaded: [], OnCartChanged: [], OnOrderPlaced: [],
               OnSetProfile: []};
  var loaded = false;
  var cart = JSON.parse(sessionStorage.getItem("ecwidFakeCart") || "null") ||
    {id: "XJ12H", items: [], total: 0};

  function copy(x) { return JSON.parse(JSON.stringify(x)); }
  function fire(name, arg) { hooks[name].slice().forEach(function (fn) { fn(copy(arg)); }); }
  function save() {
    cart.total = cart.items.reduce(function (s, i) { return s + i.product.price * i.quantity; }, 0);
    sessionStorage.setItem("ecwidFakeCart", JSON.stringify(cart));
  }
  function hook(name) {
    return {add: function (fn) {
      hooks[name].push(fn);
      if (name === "OnAPILoaded" && loaded) fn();  // late subscribers still hear it
    }};
  }

  window.ecwidFake = {
    // Ecwid's script arrives after ours; on start it reports the current cart.
    boot: function () {
      window.Ecwid = {
        OnAPILoaded: hook("OnAPILoaded"),
        OnPageLoaded: hook("OnPageLoaded"),
        OnCartChanged: hook("OnCartChanged"),
        OnOrderPlaced: hook("OnOrderPlaced"),
        OnSetProfile: hook("OnSetProfile"),
        Cart: {get: function (cb) { setTimeout(function () { cb(copy(cart)); }, 0); }}
      };
      loaded = true;
      fire("OnAPILoaded");
      fire("OnCartChanged", cart);
    },
    listeners: function (name) { return hooks[name].length; },
    openPage: function (page) { fire("OnPageLoaded", page); },
    // A customer signs in (or, with null, out); `registered` in UNIX seconds.
    signIn: function (customer) { fire("OnSetProfile", customer); },
    add: function (product, quantity, options) {
      var line = cart.items.filter(function (i) {
        return i.product.id === product.id && JSON.stringify(i.options) === JSON.stringify(options);
      })[0];
      if (line) line.quantity += quantity;
      else cart.items.push({quantity: quantity, product: product, options: options});
      save();
      fire("OnCartChanged", cart);
    },
    placeOrder: function (vendorNumber) {
      var order = {vendorNumber: vendorNumber, total: cart.total, items: copy(cart.items)};
      fire("OnOrderPlaced", order);
      cart = {id: "NEW1", items: [], total: 0};
      save();
      fire("OnCartChanged", cart);
    }
  };
})();
