/* pixel-server adapter: BigCommerce (Stencil themes, Open Data Layer).
 *
 * Subscribes to BODL (`window.bodlEvents`), which BigCommerce renders with
 * {{head.scripts}}; we poll for it in case we run first. Assumed payloads
 * (reference/storefronts.md): every event carries `currency` and
 * `line_items[]` {product_id, variant_id, sku, product_name, purchase_price,
 * sale_price, quantity, brand_name, category_names[]}; searchPerformed has
 * `search_keyword`; checkout events `cart_value`; orderPurchased `order_id`.
 * - content_id = sku, else variant_id; item_group_id = product_id;
 *   price = purchase_price, else sale_price.
 * - value = cart_value on checkout events and purchases, else the sum of
 *   price x quantity. ViewCategory carries the listed products, no value.
 * - BODL's own event_id is a cart/checkout id, not unique per event: ours
 *   are random, and the purchase's is purchase:<order_id>.
 * - The automatic PageView comes from the core (every page is a full load).
 * - Order confirmation without BODL's orderPurchased (an older checkout, or
 *   BODL off): after 5 s, a Purchase with the order id the page shows
 *   (checkout-js's [data-test=order-confirmation-order-number-text] strong)
 *   or its URL's /order-confirmation/<id>; the webhook copy brings the rest.
 */
P.run = (bought, m) => {
  /order-confirmation/.test(location.pathname) &&
    setTimeout(
      safe(() => {
        m = d.querySelector("[data-test=order-confirmation-order-number-text] strong");
        m = (m && m.textContent.trim()) || (/order-confirmation\/(\d+)/.exec(location.pathname) || [])[1];
        bought || (m && track("Purchase", props([], un, un, m)));
      }),
      5e3
    );
  wait(
    () => w.bodlEvents,
    (B) => {
      var bp = (e, value, order) =>
          props(
            (e.line_items || []).map((i) =>
              item(
                i.sku || i.variant_id || i.product_id,
                i.product_id,
                i.product_name,
                i.purchase_price != un ? i.purchase_price : i.sale_price,
                i.quantity,
                i.brand_name,
                (i.category_names || [])[0]
              )
            ),
            e.currency,
            value,
            order
          ),
        on = {
          "product.pageViewed": (e) => track("ViewContent", bp(e)),
          "product.categoryViewed": (e, p) => (p = bp(e), delete p.value, track("ViewCategory", p)),
          "product.searchPerformed": (e) => track("Search", { query: e.search_keyword }),
          "cart.addItem": (e) => track("AddToCart", bp(e)),
          "checkout.checkoutBegin": (e) => track("InitiateCheckout", bp(e, e.cart_value)),
          "checkout.paymentDetailsProvided": (e) => track("AddPaymentInfo", bp(e, e.cart_value)),
          "checkout.orderPurchased": (e) => ((bought = 1), track("Purchase", bp(e, e.cart_value, e.order_id))),
        },
        k, f;
      for (k in on) (f = k.split(".")), (f = B[f[0]] && B[f[0]][f[1]]), typeof f == "function" && f(safe(on[k]));
    }
  );
};
