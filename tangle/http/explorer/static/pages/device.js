// One registered device: its status and quarantine, keys, maker and the issuers that endorsed
// it, its gateway, the versions of its entry milestones left, the records applied to it, and a
// one-click download of the links of a proof this node holds (GET /api/v1/explorer/proof).

import {
  addressLink, deviceLink, el, facts, keyText, messageLink, milestoneLink, problem, put, short,
  table, utf8 } from "../api.js";

export function quarantineText(q) {
  if (!q) return "none";
  const why = `reason code ${q.reason}`; // a u8 for people; the protocol names none
  return q.in_force
    ? `in force since #${q.since} until #${q.expires_after}: ${why}`
    : `recorded at #${q.since}, expired after #${q.expires_after}: ${why}`;
}

function state(d) {
  if (d.quarantine && d.quarantine.in_force) {
    return `Quarantined: a quorum of operators cut this device off from milestone #${d.quarantine.since} to #${d.quarantine.expires_after}. Nodes refuse what it signs; the paywall and the charging system refuse it. The same quorum can lift it.`;
  }
  if (d.status === "active") return "Active: registered and endorsed; nodes accept what it signs.";
  if (d.status === "suspended") return "Suspended by its issuer: reinstating it takes a status record.";
  return "Revoked: the device is off the ledger for good.";
}

/** Bytes given in hex, as text when they are UTF-8 (a model name, a URI). */
function text(hex) {
  const found = utf8(hex);
  return found === null ? el("span", { class: "mono" }, hex) : found || "(none)";
}

/** Fetch the proof file and hand it to the browser as a download; an error is said beside it. */
async function download(event, url, name, said) {
  event.preventDefault();
  said.textContent = "";
  try {
    const response = await fetch(url);
    const body = await response.blob();
    if (!response.ok) {
      let error;
      try {
        error = JSON.parse(await body.text()).error;
      } catch (err) { // not the node's JSON: a proxy or server in between answered
        said.textContent = `No proof: the server answered ${response.status} ${response.statusText} without the node's error body; is a proxy between you and the node?`;
        return;
      }
      said.textContent = `No proof: ${error.message} (${error.code}).` + (error.code === "proof_unavailable"
        ? " The node has pruned that milestone, or none has confirmed the message yet: wait a milestone, or ask a node that keeps more history."
        : "");
      return;
    }
    const link = el("a", { href: URL.createObjectURL(body), download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (err) {
    said.textContent = "The node does not answer; is it running? " + err.message;
  }
}

/** The one-click proof: a download of the links of a proof this node holds, and what they are. */
export function proofBox(query, what) {
  const url = "/api/v1/explorer/proof?" + query;
  const said = el("p", { class: "note", role: "alert", id: "proof-error" });
  return el("section", { id: "proof" },
    el("h2", {}, "One-click proof"),
    el("p", {}, what),
    el("p", {}, el("a", {
      id: "proof-download", class: "button", href: url, download: "proof.json",
      onclick: (event) => download(event, url, "proof.json", said),
    }, "Download proof.json")),
    said,
    el("p", { class: "note" },
      "Check it offline with ", el("code", {}, "tanglepay verify proof.json --committee network.json"),
      ". A node never holds a device's readings: the gateway that anchored them adds the reading and its batch path."),
  );
}

export async function render(root, [given], app) {
  const id = (given || "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(id)) {
    put(root, problem("Not a device id", "A device id is 64 hex digits; paste one into the search box, or pick one from the devices page."));
    return;
  }
  const found = await app.getJSON(`/api/v1/explorer/search?q=${id}`);
  if (found.kind !== "device") {
    put(root, problem("No such device in the registry",
      "It is not registered on this node's ledger (yet). The devices page lists the registered ones."));
    return;
  }
  const shown = await draw(id, app);
  root.append(el("div", { id: "device" }, shown.content));
  // Drawn again when a milestone changes the device (the milestone event names the devices), or
  // passes the end of its quarantine (expiry changes no entry, so no event names the device).
  let until = shown.until;
  let drawing = null;
  return app.store.on((kind, data) => {
    if (kind !== "milestone" || drawing) return;
    const expired = until !== null && data.index > until;
    if (!expired && !(data.devices || []).includes(id)) return;
    drawing = draw(id, app)
      .then((again) => {
        until = again.until;
        document.getElementById("device")?.replaceChildren(again.content);
      })
      .catch(() => {}) // the next milestone event tries again
      .finally(() => (drawing = null));
  });
}

/** The device's page content, read from the node now, and the last milestone its quarantine
 * holds at (null when none holds). */
async function draw(id, app) {
  const [d, seen] = await Promise.all([
    app.getJSON(`/api/v1/devices/${id}`),
    app.getJSON(`/api/v1/explorer/devices/${id}/records`),
  ]);
  // The maker and endorsers by key, whatever their place among the issuers.
  const keys = [d.maker, ...d.endorsements].join(",");
  const issuers = await app.getJSON(`/api/v1/explorer/issuers?keys=${keys}`);
  const issuer = new Map(issuers.issuers.map((i) => [i.key, i]));
  const role = (key) => (issuer.has(key) ? `${issuer.get(key).role} "${issuer.get(key).name}"` : "–");
  const held = d.quarantine && d.quarantine.in_force;
  const content = document.createDocumentFragment();
  put(content,
    el("h1", {}, "Device ", el("span", { class: "mono small" }, short(id, 16))),
    el("p", { class: "state " + (held || d.status !== "active" ? "bad" : "good"), id: "device-state" }, state(d)),
    facts([
      ["Device id", el("span", { class: "mono wrap" }, d.device_id)],
      ["Status", el("strong", { id: "device-status" }, held ? "quarantined" : d.status)],
      ["Quarantine", quarantineText(d.quarantine)],
      ["Key", el("span", { class: "mono wrap" }, d.key)],
      ["Address", addressLink(d.address)],
      ["Maker", el("span", {}, keyText(d.maker), " ", role(d.maker))],
      ["Model", text(d.model)],
      ["Capability", d.capability === "constrained" ? "constrained, behind a gateway" : "full function"],
      ["Gateway", d.gateway ? deviceLink(d.gateway) : "none (it reaches the ledger itself)"],
      ["Attributes hash", el("span", { class: "mono wrap" }, d.attributes_hash)],
      ["URI", text(d.uri)],
      ["Registered", milestoneLink(d.registered_at)],
      ["Last changed", milestoneLink(d.updated_at)],
      ["As of milestone", milestoneLink(d.ledger_index)],
    ]),
    el("h2", {}, "Endorsed by"),
    table(["Issuer key", "Role and name"], d.endorsements.map((k) => [keyText(k), role(k)]), "No endorsement."),
    el("h2", {}, "History"),
    table(["Milestone", "Status", "Key", "Serial", "Quarantined"], d.history.map((v) => [
      milestoneLink(v.milestone_index), v.status, keyText(v.key), v.serial, v.quarantined ? "yes" : "no",
    ]), "No version stored."),
    el("h2", {}, "Records applied since this node started"),
    table(["Milestone", "Record", "Message", "Signed by"], seen.records.map((r) => [
      milestoneLink(r.milestone_index), r.kind.replace("_", " "), messageLink(r.message_id),
      el("span", {}, r.signers.map((s) => [keyText(s), " "])),
    ]), "None since this node started (the history above shows what the ledger kept)."),
    proofBox(`device=${id}`,
      `The file holds the latest milestone this node confirmed (now #${d.ledger_index}) with its committee signatures, and this device's registry entry with its audit path to that milestone's registry root: offline, it shows the device's status at that milestone. Its reading and anchor links are empty, so the check names "reading" as the first missing link${held ? " (here it stops earlier: the device is quarantined)" : ""}.`),
  );
  return { content, until: held ? d.quarantine.expires_after : null };
}
