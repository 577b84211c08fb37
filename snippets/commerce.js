/* pixel-server snippet: helpers shared by the store adapters.
 *
 * Bundled after core.js for every platform adapter except plain HTML, which
 * needs none of it. Same scope as core.js: item(), props() and wait() for the
 * adapters.
 */
var num = (x) => ((x = parseFloat(x)) == x ? x : un), // NaN -> undefined
  // A content line: content_id = variant SKU or variant id, item_group_id = product id.
  // (id, group, name, price, quantity, brand, category); short names: every byte is served.
  item = (i, g, n, p, q, b, c) => ({
    content_id: "" + i,
    item_group_id: g == un ? un : "" + g,
    content_name: n || un,
    content_category: c || un,
    brand: b || un,
    price: num(p),
    quantity: num(q) || 1,
  }),

  // Standard properties; value defaults to the sum of price x quantity
  // (NaN, so left out, when a price is missing).
  props = (contents, c, v, order_id, sum) => {
    sum = contents.length ? 0 : NaN;
    contents.forEach((l) => (sum += l.price * l.quantity));
    return {
      contents,
      content_type: "product",
      value: num(v) == un ? num(Math.round(sum * 100) / 100) : num(v),
      currency: c || S.c || un,
      order_id,
    };
  },

  // Platform globals often appear after us: poll for them for up to 30 s.
  wait = (test, f, n) => {
    n = 300;
    (function check(v) {
      (v = safe(test)()) ? safe(f)(v) : --n && setTimeout(check, 100);
    })();
  };
