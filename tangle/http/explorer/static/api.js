// Reading the node's JSON API, and the small helpers every page uses to show what it read.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** GET a JSON view of this node; an error answer becomes an ApiError with the API's code. */
export async function getJSON(path) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json" } });
  } catch (err) {
    throw new ApiError(0, "unreachable", "the node does not answer; is it running?");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = body && body.error ? body.error : { code: "http_" + response.status, message: response.statusText };
    throw new ApiError(response.status, error.code, error.message);
  }
  return body;
}

/** Build an element: el("a", {href: "#/"}, "text", child, ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "style") Object.assign(node.style, value); // CSSOM: allowed by the CSP
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export const short = (hex, n = 10) => (hex && hex.length > 2 * n ? hex.slice(0, n) + "…" + hex.slice(-4) : hex || "");
export const link = (href, text, title) => el("a", { href, title: title || text, class: "mono" }, text);
export const messageLink = (id) => link("#/message/" + id, short(id), id);
export const milestoneLink = (index) => link("#/milestone/" + index, "#" + index);
export const addressLink = (address) => link("#/address/" + address, short(address, 14), address);
export const channelLink = (id) => link("#/channel/" + id, short(id), id);
export const deviceLink = (id) => link("#/device/" + id, short(id), id);
export const keyText = (hex) => el("span", { class: "mono", title: hex }, short(hex));

export function time(ms) {
  if (ms === null || ms === undefined) return "–";
  return new Date(ms).toLocaleTimeString([], { hour12: false }) + "." + String(ms % 1000).padStart(3, "0");
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(2) + " s";
}

/** The bytes `hex` spells (pairs of hex digits). */
export const bytesOf = (hex) => Uint8Array.from(hex.match(/../g) || [], (h) => parseInt(h, 16));

/** Bytes given in hex, as UTF-8 text; null when they are not. */
export function utf8(hex) {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytesOf(hex));
  } catch (err) {
    return null;
  }
}

export function amount(text) {
  return BigInt(text).toLocaleString("en-US");
}

/** Append `children` (nested arrays flattened, null and false left out) to `root`. */
export function put(root, ...children) {
  root.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

/** A definition table: [[label, value], ...] (a null row is left out). */
export function facts(rows) {
  return el("dl", { class: "facts" }, rows.filter(Boolean).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

/** A page's error: what went wrong, and what to do about it. */
export function problem(title, advice) {
  return el("section", { class: "problem", role: "alert" }, el("h2", {}, title), el("p", {}, advice));
}

export function table(headers, rows, empty) {
  if (!rows.length) return el("p", { class: "note" }, empty);
  return el(
    "div", { class: "scroll" },
    el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c)))))),
  );
}
