// The one search box: what a typed text names, and where it leads.

const HEX64 = /^[0-9a-fA-F]{64}$/;
const BECH32 = /^[a-z]{1,83}1[02-9ac-hj-np-z]{58}$/i;
const INDEX = /^#?[0-9]{1,10}$/;

/** The route for `text`, or null with a reason. A 64-digit id may be a message, a channel or an
 *  address in hex: the node is asked which, in that order. */
export async function resolve(text, getJSON) {
  const q = text.trim();
  if (!q) return { error: "Type a message id, a tpdev1… address, a milestone index or a channel id." };
  if (INDEX.test(q)) return { route: "#/milestone/" + q.replace("#", "") };
  if (BECH32.test(q)) return { route: "#/address/" + q.toLowerCase() };
  if (HEX64.test(q)) {
    const id = q.toLowerCase();
    for (const [path, route] of [
      ["/api/v1/messages/" + id + "/metadata", "#/message/"],
      ["/api/v1/channels/" + id, "#/channel/"],
    ]) {
      try {
        await getJSON(path);
        return { route: route + id };
      } catch (err) {
        if (err.status !== 404) return { error: err.message };
      }
    }
    return { route: "#/address/" + id };
  }
  return { error: `"${q}" is not a message id (64 hex digits), an address (tpdev1…), a milestone index or a channel id.` };
}
