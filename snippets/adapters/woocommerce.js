/* pixel-server adapter: WooCommerce, from the stock markup of classic themes
 * (Storefront) and of the Blocks cart and checkout. Nothing custom on the page:
 * what WooCommerce and WordPress print anyway (reference/storefronts.md).
 *
 * - The page: WordPress body classes. `single-product` (with `postid-<id>`,
 *   the product id) -> ViewContent from the product JSON-LD WooCommerce prints
 *   (Product, alone or in an @graph: name, sku -- the product id when it has
 *   none --, offers[0].price or lowPrice, priceCurrency, brand.name) and the
 *   category of `.posted_in a`; `tax-product_cat` -> ViewCategory with the
 *   listed products (loop cards, no value) and the page title as their
 *   category; `search` (results or none) -> Search with the `s` query parameter.
 * - Currency: the JSON-LD's priceCurrency, else the pixel's `currency` setting.
 * - A loop card (li.product): its add-to-cart button's data-product_id and
 *   data-product_sku, `.woocommerce-loop-product__title`, the price of `.price`
 *   (the sale price, `ins`, when there is one), shown prices read as numbers
 *   ("1.234,50 €" -> 1234.5).
 * - AddToCart: the single-product form (form.cart) when submitted, its
 *   quantity and, for a variable product (form.variations_form), the chosen
 *   variation_id looked up in data-product_variations (sku, display_price);
 *   jQuery's `added_to_cart` on document.body (AJAX buttons of the loops:
 *   $button's card, data-quantity). The Blocks product button's
 *   `wc-blocks_added_to_cart` carries no product: not covered.
 * - InitiateCheckout on the checkout (form.checkout, or the Blocks checkout
 *   .wp-block-woocommerce-checkout), AddPaymentInfo there once: a payment
 *   method chosen by the shopper (a trusted change of a payment radio: classic
 *   `payment_method`, Blocks `radio-control-wc-payment-method-options`) or the
 *   place-order button clicked. Not `payment_method_selected`: WooCommerce's
 *   checkout.js fires it by itself when it preselects the first method. Both
 *   carry the Store API cart (GET /?rest_route=/wc/store/v1/cart, same origin:
 *   items {id, sku, name, quantity, prices.price}, totals.total_price, all in
 *   minor units of totals.currency_minor_unit, totals.currency_code).
 * - Purchase on the order-received page (`woocommerce-order-received`,
 *   unless it says the order failed): the order id from the URL
 *   (/checkout/order-received/<id>/?key=wc_order_..., or
 *   ?order-received=<id>), the REST order `id` the webhook carries, so the
 *   event_id is purchase:<id>; value from the order overview's total
 *   (.woocommerce-order-overview__total); email from the overview or the
 *   customer details. No lines: the page shows none with ids; the webhook copy
 *   brings them.
 * The automatic PageView comes from the core (every page is a full load).
 */
P.run = (ld, pid, o, cur, cat, m, paid, K) => {
  var b = d.body,
    is = (k) => b.classList.contains(k),
    tx = (s, r) => ((s = (r || d).querySelector(s)) ? s.textContent.trim() : ""),
    amt = (t) => num(t.replace(/[^\d.,]/g, "").replace(/[.,](?=\d{3}\b)/g, "").replace(",", ".")),
    card = (el, n, l, a) => (
      (l = el.closest(".product") || el),
      (a = l.querySelector("[data-product_id]") || el),
      item(
        a.getAttribute("data-product_sku") || a.getAttribute("data-product_id"),
        a.getAttribute("data-product_id"),
        tx(".woocommerce-loop-product__title", l),
        amt(tx(".price ins .amount", l) || tx(".price .amount", l)),
        n,
        un,
        cat
      )
    ),
    line = (n, v) =>
      item(v.sku || v.variation_id || ld.sku || pid, pid, ld.name, v.display_price || o.price || o.lowPrice, n, (ld.brand || {}).name, tx(".posted_in a")),
    pay = () => paid || ((paid = 1), K.then((p) => track("AddPaymentInfo", p)));

  d.querySelectorAll("script[type='application/ld+json']").forEach(
    safe((s) => (s = JSON.parse(s.textContent)) && (s["@graph"] || [s]).forEach((x) => x["@type"] == "Product" && (ld = x)))
  );
  ld = ld || {};
  o = [].concat(ld.offers || [])[0] || {};
  cur = o.priceCurrency;
  pid = (/postid-(\d+)/.exec(b.className) || [])[1];

  if (is("single-product")) {
    track("ViewContent", props([line(1, {})], cur));
    on("submit", (e, f, v) => {
      if (!(f = e.target).matches("form.cart")) return;
      v = f.elements.variation_id;
      v = (v && (JSON.parse(f.getAttribute("data-product_variations")) || []).find((x) => x.variation_id == v.value)) || {};
      track("AddToCart", props([line((f.elements.quantity || {}).value, v)], cur));
    });
  }
  if (is("tax-product_cat")) {
    cat = tx(".page-title");
    m = props([].map.call(d.querySelectorAll("li.product"), (l) => card(l)), cur);
    delete m.value;
    track("ViewCategory", m);
  }
  is("search") && track("Search", { query: new URLSearchParams(location.search).get("s") });

  if (d.querySelector("form.checkout,.wp-block-woocommerce-checkout") && !is("woocommerce-order-received")) {
    K = fetch("/?rest_route=/wc/store/v1/cart")
      .then((r) => r.json())
      .then((k, t, u) => (
        (t = k.totals),
        (u = 10 ** t.currency_minor_unit),
        props(k.items.map((i) => item(i.sku || i.id, i.id, i.name, i.prices.price / u, i.quantity)), t.currency_code, t.total_price / u)
      ))
      .catch(noop);
    K.then((p) => track("InitiateCheckout", p));
    on("change", (e) => e.isTrusted && /payment/.test(e.target.name) && pay());
    on("click", (e) => e.target.closest("#place_order,.wc-block-components-checkout-place-order-button") && pay());
  }

  if (is("woocommerce-order-received") && (m = /order-received[/=](\d+)/.exec(location.href)) && !d.querySelector(".woocommerce-thankyou-order-failed")) {
    ident({ email: tx(".woocommerce-order-overview__email strong") || tx(".woocommerce-customer-details--email") });
    track("Purchase", props([], cur, amt(tx(".woocommerce-order-overview__total .amount")), m[1]));
  }

  wait(
    () => w.jQuery,
    ($) => $(b).on("added_to_cart", safe((e, f, h, $b) => track("AddToCart", props([card($b[0] || $b, ($b[0] || $b).getAttribute("data-quantity"))], cur))))
  );
};
