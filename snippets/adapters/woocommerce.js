/* pixel-server adapter: WooCommerce, from the stock markup of classic themes
 * (Storefront) and of the Blocks checkout. Nothing custom on the page: only
 * what WooCommerce and WordPress print anyway (reference/storefronts.md).
 *
 * - The page: WordPress body classes. `single-product` (with `postid-<id>`,
 *   the product id) -> ViewContent from the product JSON-LD WooCommerce prints
 *   (a Product, alone or in an @graph: name, sku -- WooCommerce puts the
 *   product id there when it has none --, brand.name, offers[0] price or
 *   lowPrice and priceCurrency); `tax-product_cat` -> ViewCategory with the
 *   listed loop cards (no value); `search` -> Search with the `s` parameter.
 * - Currency: the JSON-LD's priceCurrency, else the pixel's `currency` setting.
 * - A loop card (li.product): its add-to-cart button's data-product_id and
 *   data-product_sku, its h2 title, the price of `.price` (the sale price,
 *   `ins`, when there is one). Shown prices are read as numbers: thousands
 *   separators dropped, a decimal comma made a point ("1.234,50 €" -> 1234.5;
 *   a 3-decimal currency would be misread).
 * - AddToCart: the single-product form (form.cart) when submitted, with its
 *   quantity and, for a variable product (form.variations_form), the chosen
 *   variation_id looked up in data-product_variations (sku, display_price);
 *   jQuery's `added_to_cart` on document.body (the loops' AJAX buttons:
 *   $button's card and data-quantity). The Blocks product button's
 *   `wc-blocks_added_to_cart` carries no product: not covered (no bytes left).
 * - InitiateCheckout on the checkout (form.checkout, or the Blocks checkout's
 *   .wc-block-checkout), and AddPaymentInfo there once: a payment method the
 *   shopper chose (a trusted change of a payment radio: classic
 *   `payment_method`, Blocks `radio-control-wc-payment-method-options`) or the
 *   place-order button (#place_order, Blocks' *place-order-button) clicked.
 *   Not `payment_method_selected`: checkout.js fires it by itself when it
 *   preselects the first method. Both carry the Store API cart (GET
 *   /?rest_route=/wc/store/v1/cart, same origin: items {id, sku, name,
 *   quantity, prices.price}, totals.total_price in minor units of
 *   totals.currency_minor_unit, totals.currency_code; item_group_id is the
 *   item's id, the variation's for a variation).
 * - Purchase on the order-received endpoint: the order id from the URL
 *   (/checkout/order-received/<id>/?key=wc_order_..., or ?order-received=<id>
 *   with plain permalinks), which is the REST order `id` the webhook carries,
 *   so the event_id is purchase:<id>, same as the webhook copy's; value from
 *   the order overview's total (li.total, .woocommerce-order-overview__total).
 *   None when the page says the order failed (*order-failed). No lines (the
 *   page shows none with ids) and no email: the webhook copy brings them.
 * - Form events (forms.js) do not fit in this platform's 3 KB budget.
 * The automatic PageView comes from the core (every page is a full load).
 */
P.run = (ld, pid, o, cur, m, paid, K) => {
  var b = d.body,
    is = (k) => b.classList.contains(k),
    tx = (s, r) => ((s = q(s, r)) ? s.textContent.trim() : ""),
    amt = (t) => num(t.replace(/[^\d.,]/g, "").replace(/[.,](?=\d{3}\b)/g, "").replace(",", ".")),
    card = (el, n, l, a) => (
      (l = el.closest(".product") || el),
      (a = (q("[data-product_id]", l) || el).dataset),
      item(
        a.product_sku || a.product_id,
        a.product_id,
        tx("h2", l),
        amt(tx("ins .amount,.price>.amount", l)),
        n
      )
    ),
    line = (n, v) =>
      item(v.sku || v.variation_id || ld.sku || pid, pid, ld.name, v.display_price || o.price || o.lowPrice, n, (ld.brand || {}).name),
    pay = () => paid || ((paid = 1), K.then((p) => track("AddPaymentInfo", p)));

  d.querySelectorAll("[type*=ld]").forEach(
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
      v = (v && (JSON.parse(f.dataset.product_variations) || []).find((x) => x.variation_id == v.value)) || {};
      track("AddToCart", props([line((f.elements.quantity || {}).value, v)], cur));
    });
  }
  if (is("tax-product_cat")) {
    m = props([].map.call(d.querySelectorAll("li.product"), (l) => card(l)), cur);
    delete m.value;
    track("ViewCategory", m);
  }
  is("search") && track("Search", { query: new URLSearchParams(location.search).get("s") });

  if (q("form.checkout,.wc-block-checkout")) {
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
    on("click", (e) => e.target.closest("#place_order,[class*=place-order-button]") && pay());
  }

  if ((m = /order-received[/=](\d+)/.exec(location.href)) && !q("[class*=order-failed]")) {
    track("Purchase", props([], cur, amt(tx("li.total .amount")), m[1]));
  }

  wait(
    () => w.jQuery,
    ($) => $(b).on("added_to_cart", safe((e, f, h, $b) => track("AddToCart", props([card(($b = $b[0] || $b), $b.dataset.quantity)], cur))))
  );
};
