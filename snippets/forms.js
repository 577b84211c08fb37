/* pixel-server snippet: the seed's events from the page's forms and clicks.
 *
 * Bundled after the platform modules for every platform but Shopify (its
 * sandbox sees no page); same scope as core.js. Each event fires once per page
 * (AddToWishlist once per product). For a submitted form, the first that
 * applies wins:
 *
 * 1. `data-ttq-event="Name"` on the submit button, the form or an element
 *    around it: that event, the merchant's override (on any other clicked
 *    element too, forms aside: they count when submitted);
 * 2. registration -> CompleteRegistration: WooCommerce's
 *    form.woocommerce-form-register, BigCommerce's
 *    login.php?action=save_new_account;
 * 3. a form posting to BigCommerce's wishlist.php -> AddToWishlist (the
 *    action's product_id); a click on YITH's (WooCommerce) .add_to_wishlist
 *    (its data-product-id) too;
 * 4. nothing for log-in and search forms (a password or search field) and for
 *    forms whose class, id or action says search, login, cart or checkout:
 *    the adapters see the shop's own forms;
 * 5. newsletter -> Subscribe: class, id or action with newsletter, subscribe,
 *    mc4wp or klaviyo, or an email as the only field to fill;
 * 6. contact -> Contact: contact in class, id or action (Contact Form 7's
 *    wpcf7-form too);
 * 7. any other form with an email or phone field -> Lead (TikTok's Submit
 *    Form).
 *
 * Listeners capture, so a page's stopPropagation() does not hide a submit.
 * Field values are never read.
 */
var sent = {},
  on = (t, f) => d.addEventListener(t, safe(f), !0),
  once = (n, id, k) =>
    sent[(k = n + id)] || ((sent[k] = 1), track(n, id && { content_type: "product", contents: [{ content_id: id }] }));

on("submit", (e, f, k, x, m) => {
  f = e.target;
  k = f.className + " " + f.id + " " + f.getAttribute("action");
  x = [].filter.call(f.elements, (i) => !/hid|sub|but|che|rad|fie|res/.test(i.type)); // the fields to fill
  (x = ((e.submitter || f).closest("[data-ttq-event]") || f).getAttribute("data-ttq-event") ||
    (f.matches(".woocommerce-form-register,[action*=save_new_account]")
      ? "CompleteRegistration"
      : /wishlist\.php/.test(k)
        ? ((m = /product_id=(\d+)/.exec(k)), "AddToWishlist")
        : f.querySelector("[type=password],[type=search]") || /search|login|cart|checkout/i.test(k)
          ? 0
          : /newsletter|subscribe|mc4wp|klaviyo/i.test(k) || (x.length == 1 && x[0].type == "email")
            ? "Subscribe"
            : /contact|wpcf7/i.test(k)
              ? "Contact"
              : f.querySelector("[type=email],[type=tel],[name*=mail],[name*=phone]") && "Lead")) &&
    once(x, m && m[1]);
});

on("click", (e, t) => {
  t = e.target.closest("[data-ttq-event],.add_to_wishlist");
  t && t.tagName != "FORM" && once(t.getAttribute("data-ttq-event") || "AddToWishlist", t.getAttribute("data-product-id"));
});
