/* pixel-server adapter: Shopify custom pixel (Web Pixels API).
 *
 * Runs inside Shopify's pixel sandbox: no access to the store's DOM, URL or
 * storage. The custom pixel code from pixel_server.install.paste_instructions()
 * subscribes to "all_standard_events" at once (so nothing fired before we load
 * is lost), parks the events in `self.pixelServerShopify.queue` together with
 * Shopify's `analytics`, `browser` and `init` objects, and loads this script.
 * Assumptions (reference/storefronts.md, shopify.dev Web Pixels API):
 * - page URL and referrer come from `event.context.document` (and
 *   `init.context.document` for the landing URL); the event's `timestamp`
 *   (ISO 8601) is its time;
 * - cookies and localStorage go through `browser.cookie.get/set` and
 *   `browser.localStorage.getItem/setItem` (Promises, run in the top frame);
 *   without them, the document's own (fails quietly in an opaque sandbox);
 * - ProductVariant {id, sku, title, price{amount, currencyCode}, product{id,
 *   title, vendor, type}}: content_id = sku, else variant id; item_group_id =
 *   product id;
 * - product_viewed.data.productVariant; collection_viewed.data.collection
 *   {title, productVariants[]}; search_submitted.data.searchResult.query;
 *   product_added_to_cart.data.cartLine {merchandise, quantity,
 *   cost.totalAmount{amount, currencyCode}}; checkout_* .data.checkout
 *   {currencyCode, totalPrice{amount}, lineItems[]{quantity, variant}, email,
 *   phone, order{id}} -- order.id may be a GID (normalised to its numeric tail);
 * - the logged-in customer (init.data.customer {id, email, phone}) and the
 *   checkout's email/phone feed identify();
 * - form_submitted (a DOM event: data.element {action, id, elements[{name,
 *   value}]}): the theme's hidden form_type input tells the form apart --
 *   create_customer (the account form, action /account) is
 *   CompleteRegistration, customer (the newsletter form) Subscribe, contact
 *   (the contact form) Contact; once per page each. Shopify has no wishlist.
 * - Shopify only runs custom pixels after the customer's consent (set in the
 *   pixel's privacy settings). TikTok's own pixel is never bundled for Shopify
 *   (it could not see the store's page from the sandbox; TikTok's Shopify app
 *   does that job).
 */
var X = w.pixelServerShopify;
if (X) {
  let B = X.browser || {},
    I = X.init || {},
    where = (c) => ((c = (c || {}).document || {}), { url: (c.location || {}).href, referrer: c.referrer });
  P.auto = 0;
  P.loc = () => where(I.context);
  // The core's formats: a cookie with its max-age; "value|expiry ms" in localStorage.
  if (B.cookie)
    P.store = {
      get: (k) =>
        B.cookie
          .get(k)
          .then((v) => v || B.localStorage.getItem(k).then((s) => ((s = /(.*)\|(\d+)$/.exec(s)) && s[2] > Date.now() ? s[1] : "")))
          .catch(noop),
      set(k, v, days) {
        B.cookie.set(k + "=" + encodeURIComponent(v) + "; max-age=" + days * 86400 + "; path=/; SameSite=Lax").catch(noop);
        B.localStorage.setItem(k, v + "|" + (Date.now() + days * 864e5)).catch(noop);
      },
    };

  P.run = () => {
    var c = (I.data || {}).customer || {},
      q = X.queue || [],
      names = {
        page_viewed: "PageView",
        product_viewed: "ViewContent",
        collection_viewed: "ViewCategory",
        search_submitted: "Search",
        product_added_to_cart: "AddToCart",
        checkout_started: "InitiateCheckout",
        payment_info_submitted: "AddPaymentInfo",
        checkout_completed: "Purchase",
      },
      // form_submitted: the form's hidden form_type says what the theme's form is.
      forms = { create_customer: "CompleteRegistration", customer: "Subscribe", contact: "Contact" },
      sent = {}, // form events, once per page
      line = (v, n, p) => (
        (v = v || {}),
        (p = v.product || {}),
        item(v.sku || v.id, p.id, p.title || v.title, (v.price || {}).amount, n, p.vendor, p.type)
      ),
      // Each payload is recognised by the object it carries.
      handle = safe((e) => {
        var x = e.data || {},
          name =
            names[e.name] ||
            (e.name == "form_submitted" && forms[(((x.element || {}).elements || []).find((i) => i.name == "form_type") || {}).value]),
          k = x.checkout,
          l = x.cartLine,
          v = x.productVariant,
          g = x.collection,
          p = {},
          t;
        if (!name || sent[name]) return;
        e.name == "form_submitted" && (sent[name] = 1);
        if (k) {
          ident(k); // email, phone
          p = props(
            (k.lineItems || []).map((i) => line(i.variant, i.quantity)),
            k.currencyCode,
            (k.totalPrice || {}).amount,
            (k.order || {}).id // once the order exists (checkout_completed)
          );
        }
        if (l) (t = (l.cost || {}).totalAmount || {}), (p = props([line(l.merchandise, l.quantity)], t.currencyCode, t.amount));
        if (v) p = props([line(v)], (v.price || {}).currencyCode);
        if (g) {
          p = props((g.productVariants || []).map((v) => Object.assign(line(v), { content_category: g.title })));
          delete p.value;
        }
        if (x.searchResult) p = { query: x.searchResult.query };
        track(name, p, 0, where(e.context), Date.parse(e.timestamp));
      });
    ident({ email: c.email, phone: c.phone, external_id: c.id });
    q.splice(0).forEach(handle);
    q.push = handle;
  };
}
