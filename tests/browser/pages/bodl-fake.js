/* A stand-in for BigCommerce's Open Data Layer: window.bodlEvents with
 * subscribable channels (bodlEvents.product.pageViewed(cb), ...). Like the
 * real one, a subscriber that comes late still gets what was emitted before
 * it subscribed. Tests drive it through window.bodlFake. */
(function () {
  var subs = {}, past = {};
  function copy(x) { return JSON.parse(JSON.stringify(x)); }
  function channel(name) {
    return function (cb) {
      (subs[name] = subs[name] || []).push(cb);
      (past[name] || []).forEach(function (p) { cb(copy(p)); });
    };
  }
  window.bodlEvents = {
    product: {
      pageViewed: channel("product.pageViewed"),
      categoryViewed: channel("product.categoryViewed"),
      searchPerformed: channel("product.searchPerformed")
    },
    cart: {addItem: channel("cart.addItem")},
    checkout: {
      checkoutBegin: channel("checkout.checkoutBegin"),
      paymentDetailsProvided: channel("checkout.paymentDetailsProvided"),
      orderPurchased: channel("checkout.orderPurchased")
    }
  };

  function line(quantity) {
    return {product_id: 77, variant_id: 501, sku: "SKU-77-RED-M", product_name: "Sweatshirt",
            purchase_price: 8, sale_price: 8, base_price: 10, retail_price: 10,
            quantity: quantity, brand_name: "Acme", category_names: ["Apparel", "Tops"],
            currency: "USD"};
  }
  var hoodie = {product_id: 78, variant_id: 0, sku: "", product_name: "Hoodie",
                purchase_price: 30, sale_price: 30, quantity: 1, brand_name: "Acme",
                category_names: ["Apparel"], currency: "USD"};
  var base = {event_id: "cart-6f1c", channel_id: 1, currency: "USD"};
  function payload(extra) { return Object.assign({}, base, extra); }

  window.bodlFake = {
    emit: function (name, p) {
      (past[name] = past[name] || []).push(p);
      (subs[name] || []).forEach(function (cb) { cb(copy(p)); });
    },
    // What the storefront emits on each kind of page, and on its buttons.
    payloads: {
      "product.pageViewed": payload({product_value: 8, line_items: [line(1)]}),
      "product.categoryViewed": payload({category_id: 23, category_name: "Apparel",
                                         line_items: [line(1), hoodie]}),
      "product.searchPerformed": payload({search_keyword: "red sweatshirt", line_items: [line(1)]}),
      "cart.addItem": payload({product_value: 16, line_items: [line(2)]}),
      "checkout.checkoutBegin": payload({cart_value: 16, line_items: [line(2)]}),
      "checkout.paymentDetailsProvided": payload({cart_value: 16, line_items: [line(2)]}),
      "checkout.orderPurchased": payload({order_id: 250, cart_value: 21.5, tax: 1.5,
                                          shipping_cost: 4, coupon_codes: [], line_items: [line(2)]})
    }
  };
})();
