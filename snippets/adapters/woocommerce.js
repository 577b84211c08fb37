/* pixel-server adapter: WooCommerce.
 *
 * Page-level facts come from the theme tag, which renders (server side, in
 * wp_footer, before this script) a `window.pixelServerWoo` object:
 *
 *   window.pixelServerWoo = {
 *     page: "product" | "category" | "search" | "checkout" | "order-received" | "other",
 *     currency: "USD",                                  // get_woocommerce_currency()
 *     product: LINE,                                    // page "product" (is_product())
 *     category: {id: 15, name: "Apparel"},              // page "category" (is_product_category())
 *     query: "red sweatshirt",                          // page "search" (get_search_query())
 *     cart: {total: 16.0, items: [LINE, ...]},          // page "checkout" (is_checkout())
 *     order: {id: 10045, total: 16.0, currency: "USD",  // page "order-received"
 *             email: "...", phone: "...", items: [LINE, ...]},  // (woocommerce_thankyou)
 *     products: {"<product id>": LINE, ...},            // products listed on this page (optional)
 *     added: [LINE, ...]                                // added to the cart by the request that
 *   }                                                   // rendered this page (non-AJAX add to cart)
 *   LINE = {product_id, variation_id, sku, name, price, quantity, brand, category}
 *   (in `products` the key is the product id and product_id may be left out)
 *
 * Numbers are JSON numbers (not formatted prices). content_id = sku, else
 * variation_id, else product_id; item_group_id = product_id. The purchase
 * event_id is purchase:<order.id> (the REST order `id` the webhook carries).
 *
 * Browser events: jQuery `added_to_cart` on document.body (event, fragments,
 * cart_hash, $button with data-product_id / data-product_sku / data-quantity;
 * name and price from `products` when listed) -> AddToCart;
 * `payment_method_selected` on the checkout page -> AddPaymentInfo (once).
 * Block-based carts (`wc-blocks_added_to_cart`, no product data) are not
 * covered. The automatic PageView comes from the core.
 */
P.run = () => {
  var W = w.pixelServerWoo || {},
    page = W.page,
    listed = W.products || {},
    cur = W.currency,
    cart = W.cart || {},
    order = W.order || {},
    line = (l, n, id) => (
      (l = l || {}),
      (id = l.product_id || l.id || id),
      P.item(l.sku || l.variation_id || id, id, l.name, l.price, n || l.quantity, l.brand, l.category)
    ),
    lines = (a) => (a || []).map((l) => line(l)),
    paid,
    p;

  page == "product" && P.track("ViewContent", P.props([line(W.product, 1)], cur));
  if (page == "category") {
    p = P.props(
      Object.keys(listed).map((id, l) => (
        (l = line(listed[id], 1, id)), (l.content_category = l.content_category || (W.category || {}).name), l
      )),
      cur
    );
    delete p.value;
    P.track("ViewCategory", p);
  }
  page == "search" && P.track("Search", { query: W.query });
  (W.added || []).length && P.track("AddToCart", P.props(lines(W.added), cur));
  page == "checkout" && P.track("InitiateCheckout", P.props(lines(cart.items), cur, cart.total));
  if (page == "order-received") {
    P.identify(order); // email, phone
    P.track("Purchase", P.props(lines(order.items), order.currency || cur, order.total, order.id));
  }

  P.wait(
    () => d.body && w.jQuery,
    ($) => {
      $(d.body).on(
        "added_to_cart",
        safe((e, fragments, hash, $b) => {
          var el = $b && ($b[0] || $b),
            get = (k) => ($b && $b.data ? $b.data(k) : el.getAttribute("data-" + k)),
            id = get("product_id"),
            l = line(listed[id], get("quantity"), id);
          if (get("product_sku")) l.content_id = "" + get("product_sku");
          P.track("AddToCart", P.props([l], cur));
        })
      );
      $(d.body).on(
        "payment_method_selected",
        safe(() => page == "checkout" && !paid && ((paid = 1), P.track("AddPaymentInfo", P.props(lines(cart.items), cur, cart.total))))
      );
    }
  );
};
