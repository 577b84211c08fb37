/* pixel-server snippet: the seed's events from the page's forms and clicks.
 *
 * Bundled after the platform modules for plain-HTML sites and BigCommerce
 * (Shopify's sandbox sees no page; WooCommerce's and Ecwid's adapters leave
 * no room for it in the 3 KB budget: docs/benchmarks.md); same scope as
 * core.js. Each event fires once per page
 * (AddToWishlist once per product). For a submitted form, the first that
 * applies wins:
 *
 * 1. `data-ttq-event="Name"` on the submit button, the form or an element
 *    around it: that event, the merchant's override (on any other clicked
 *    element too, forms aside: they count when submitted);
 * 2. registration -> CompleteRegistration: register (WooCommerce's
 *    form.register) or new_account (BigCommerce's
 *    login.php?action=save_new_account) in the form's class, id or action;
 * 3. a form posting to BigCommerce's wishlist.php -> AddToWishlist (the
 *    action's product_id); a click on YITH's (WooCommerce) .add_to_wishlist
 *    (its data-product-id) too;
 * 4. nothing for log-in forms (a password field) and forms whose class, id or
 *    action says search, login, cart or checkout: the adapters see the shop's
 *    own forms;
 * 5. newsletter -> Subscribe: class, id or action with newsletter, subscribe,
 *    mc4wp or klaviyo, or an email as the only field to fill;
 * 6. contact -> Contact: contact in class, id or action (Contact Form 7's
 *    wpcf7-form too);
 * 7. any other form with an email or phone field (type email or tel) -> Lead
 *    (TikTok's Submit Form).
 *
 * Listeners capture (core.js's on()), so a page's stopPropagation() does not
 * hide a submit. Field values are never read.
 */
var sent = {},
  once = (n, id, k) =>
    n && !sent[(k = n + id)] && ((sent[k] = 1), track(n, id && { content_type: "product", contents: [{ content_id: id }] }));

on("submit", (e, f, k, m, x) => {
  f = e.target;
  k = f.className + " " + f.id + " " + f.getAttribute("action");
  // One regex, leftmost match: registration is tested apart (BigCommerce's is login.php?...new_account).
  m = /wishlist\.php.*product_id=(\d+)|(search|login|cart|checkout)|(newsletter|subscribe|mc4wp|klaviyo)|(contact|wpcf7)/i.exec(k) || [];
  x = [].filter.call(f.elements, (i) => !/hid|sub|but|che|rad/.test(i.type)); // the fields to fill
  once(
    ((e.submitter || f).closest("[data-ttq-event]") || f).dataset.ttqEvent ||
      (/register|new_account/i.test(k)
        ? "CompleteRegistration"
        : m[1]
          ? "AddToWishlist"
          : m[2] || q("[type=password]", f)
            ? 0
            : m[3] || (x.length == 1 && x[0].type == "email")
              ? "Subscribe"
              : m[4]
                ? "Contact"
                : q("[type=email],[type=tel]", f) && "Lead"),
    m[1]
  );
});

on("click", (e, t) => {
  t = e.target.closest("[data-ttq-event],.add_to_wishlist");
  t && t.tagName != "FORM" && once(t.dataset.ttqEvent || "AddToWishlist", t.dataset.productId);
});
