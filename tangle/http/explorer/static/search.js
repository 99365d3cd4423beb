// The one search box: the node says what a typed text names (GET /api/v1/explorer/search), and
// the box leads to that page, or says why there is none.

const PAGES = {
  message: "#/message/",
  refused: "#/message/", // the message page says why it was refused
  channel: "#/channel/",
  address: "#/address/",
  milestone: "#/milestone/",
  device: "#/device/",
};

/** `{route}` for `text`, or `{error}` saying why there is none. */
export async function resolve(text, getJSON) {
  const q = text.trim();
  if (!q) return { error: "Type a message id, a tpdev1… address, a milestone index, a channel or device id." };
  try {
    const found = await getJSON("/api/v1/explorer/search?q=" + encodeURIComponent(q));
    return found.kind in PAGES ? { route: PAGES[found.kind] + found.id } : { error: found.reason };
  } catch (err) {
    return { error: err.message };
  }
}
