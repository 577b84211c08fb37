/* pixel-server adapter: plain HTML sites.
 *
 * Nothing platform-specific: the core sends a PageView when the page loads
 * (unless the page's own queued ttq calls already contain ttq.page()), and
 * the page reports everything else through the ttq API:
 *   ttq.track("AddToCart", {contents: [...], value: 16, currency: "USD"}, {event_id: "..."})
 */
