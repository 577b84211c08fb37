/* pixel-server adapter: Ecwid.
 *
 * Loaded by Ecwid itself (the app's JS file URL, scope customize_storefront)
 * or by a tag on a site that embeds the store. Assumptions about Ecwid's
 * storefront JS API (reference/storefronts.md):
 * - `Ecwid.OnAPILoaded.add(fn)`; the other hooks are registered inside it.
 * - `Ecwid.OnPageLoaded.add(fn(page))`: `page.type` is PRODUCT (productId,
 *   name), CATEGORY (categoryId, name), SEARCH (keywords), CHECKOUT_*.
 *   ViewCategory: content_type product_group, one content: the category id
 *   and its name (the page title when Ecwid gives none). The store is
 *   a single-page app, so every OnPageLoaded is also a PageView (no
 *   automatic one). InitiateCheckout on the first CHECKOUT_* page of a
 *   checkout, AddPaymentInfo on its CHECKOUT_PAYMENT_DETAILS, once each until
 *   the shopper leaves the checkout.
 * - `Ecwid.OnCartChanged.add(fn(cart))` does not say what changed, and may
 *   fire with the unchanged cart when the widget starts: AddToCart is the
 *   positive quantity difference from the previous cart, whose first value
 *   comes from `Ecwid.Cart.get(cb)` when present, else from the first
 *   OnCartChanged. Cart items: {quantity, product: {id, sku, price, name}, options}.
 * - `Ecwid.OnOrderPlaced.add(fn(order))`: order.vendorNumber (the order id
 *   the server's webhook side also uses: vendorOrderNumber), total, items
 *   (cart item shape). The Purchase comes from there only: the
 *   ORDER_CONFIRMATION page carries other ids (orderId, orderNumber), and a
 *   purchase under another id would not meet its webhook copy.
 * - `Ecwid.OnSetProfile.add(fn(customer))`, on sign-in (null on sign-out):
 *   the customer's email feeds identify(); Ecwid signs a new customer in at
 *   once, so a customer `registered` (UNIX seconds) less than 10 minutes ago
 *   is a CompleteRegistration, once, its event_id registration:<customer id>
 *   (the server keeps one per id, should a later page load say it again).
 * - Currency: `Ecwid.getStoreCurrency()` when that function exists, else the
 *   pixel's `currency` setting, else none. Product pages carry no price, so
 *   ViewContent has no value.
 */
P.auto = 0;
P.run = () =>
  wait(
    () => w.Ecwid && w.Ecwid.OnAPILoaded && w.Ecwid,
    (E) => {
      var on = (hook, f) => E[hook] && E[hook].add(safe(f)),
        cur = () => E.getStoreCurrency && E.getStoreCurrency(),
        key = (i) => JSON.stringify([i.product.id, i.product.sku, i.options]),
        line = (i, n) => item(i.product.sku || i.product.id, i.product.id, i.product.name, i.product.price, n || i.quantity),
        lines = (c) => ((c && c.items) || []).filter((i) => i && i.product),
        lp = (l, value, order) => props(l.map((i) => line(i)), cur(), value, order),
        had, // quantities of the previous cart, by line key
        last = [], // lines of the latest non-empty cart (Ecwid empties it on purchase)
        hooked, // OnAPILoaded may fire again: hook in once
        checkout, // the shopper is in the checkout (CHECKOUT_* pages)
        paid, // AddPaymentInfo sent in this checkout
        signed; // CompleteRegistration sent
      function seen(cart, l) {
        had = {};
        (l = lines(cart)).forEach((i) => (had[key(i)] = (had[key(i)] || 0) + i.quantity));
        if (l.length) last = l;
      }
      on("OnAPILoaded", () => {
        if (hooked) return;
        hooked = 1;
        E.Cart && E.Cart.get && E.Cart.get(safe((c) => had || seen(c)));
        on("OnCartChanged", (cart) => {
          var before = had, added = [];
          seen(cart);
          before &&
            lines(cart).forEach((i, k) => {
              if (had[(k = key(i))] > (before[k] || 0)) added.push(line(i, had[k] - (before[k] || 0))), (before[k] = had[k]);
            });
          added.length && track("AddToCart", props(added, cur()));
        });
        on("OnPageLoaded", (page) => {
          var t = page.type,
            c = /^CHECKOUT_/.test(t); // test(undefined) is false
          pv();
          t == "PRODUCT" && track("ViewContent", props([item(page.productId, page.productId, page.name)], cur()));
          t == "CATEGORY" && track("ViewCategory", { content_type: "product_group", contents: [{ content_id: "" + page.categoryId, content_name: page.name || d.title }] });
          t == "SEARCH" && track("Search", { query: page.keywords });
          c && !checkout && track("InitiateCheckout", lp(last));
          t == "CHECKOUT_PAYMENT_DETAILS" && !paid && ((paid = 1), track("AddPaymentInfo", lp(last)));
          (checkout = c) || (paid = 0); // leaving the checkout: a later one counts again
        });
        on("OnSetProfile", (c) => c && (ident(c), !signed && Date.now() / 1e3 - c.registered < 600 && ((signed = 1), track("CompleteRegistration", {}, "registration:" + c.id))));
        on("OnOrderPlaced", (o, l) =>
          track("Purchase", lp((l = lines(o)).length ? l : last, o.total, o.vendorNumber || o.id || o.orderNumber))
        );
      });
    }
  );
