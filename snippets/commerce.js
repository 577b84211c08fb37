/* pixel-server snippet: helpers shared by the store adapters.
 *
 * Bundled after core.js for every platform adapter except plain HTML, which
 * needs none of it. Same scope as core.js: extends `P`.
 */
var num = (x) => ((x = parseFloat(x)) == x ? x : un); // NaN -> undefined

Object.assign(P, {
  // A content line: content_id = variant SKU or variant id, item_group_id = product id.
  item: (id, group, name, price, qty, brand, category) => ({
    content_id: "" + id,
    item_group_id: group == un ? un : "" + group,
    content_name: name || un,
    content_category: category || un,
    brand: brand || un,
    price: num(price),
    quantity: num(qty) || 1,
  }),

  // Standard properties; value defaults to the sum of price x quantity
  // (NaN, so left out, when a price is missing).
  props(contents, currency, value, order_id, sum) {
    sum = contents.length ? 0 : NaN;
    contents.forEach((c) => (sum += c.price * c.quantity));
    return {
      contents,
      content_type: "product",
      value: num(value) == un ? num(Math.round(sum * 100) / 100) : num(value),
      currency: currency || S.c || un,
      order_id,
    };
  },

  // Platform globals often appear after us: poll for them for up to 30 s.
  wait(test, f, n) {
    n = 300;
    (function check(v) {
      (v = safe(test)()) ? safe(f)(v) : --n && setTimeout(check, 100);
    })();
  },
});
