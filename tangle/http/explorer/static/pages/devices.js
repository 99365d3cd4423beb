// The device registry: devices under a quarantine in force (reason, evidence hash, expiry and
// the operators who signed it), every registered device a page at a time, and the issuers.

import { deviceLink, el, keyText, messageLink, milestoneLink, put, table } from "../api.js";
import { quarantineText } from "./device.js";

const PAGE = 50;

function signedBy(record) {
  if (!record) return el("span", { class: "note" }, "not remembered by this node");
  return el("span", {}, record.signers.map((s) => [keyText(s), " "]), "in ", messageLink(record.message_id));
}

function quarantineRows(devices) {
  return devices.map((d) => [
    deviceLink(d.device_id), d.quarantine.reason, keyText(d.quarantine.evidence_hash),
    milestoneLink(d.quarantine.since), "#" + d.quarantine.expires_after, signedBy(d.quarantine.record),
  ]);
}

function deviceRows(devices) {
  return devices.map((d) => [
    deviceLink(d.device_id),
    d.quarantine && d.quarantine.in_force ? "quarantined" : d.status,
    d.capability, d.gateway ? deviceLink(d.gateway) : "–", keyText(d.maker), d.endorsements.length,
  ]);
}

function issuerRows(issuers) {
  return issuers.map((i) => [
    keyText(i.key), i.role, i.name || "–", i.admitted ? "admitted" : "removed", signedBy(i.record),
  ]);
}

/** A table with a "More" button that reads the next page of `path` until there is none. */
async function paged(app, path, key, headers, rows, empty) {
  const first = await app.getJSON(`${path}${path.includes("?") ? "&" : "?"}count=${PAGE}`);
  const body = table(headers, rows(first[key]), empty);
  const box = el("div", {}, el("p", { class: "note" }, `${first.total} in all.`), body);
  let next = first.next;
  const more = el("button", { type: "button" }, "More");
  more.addEventListener("click", async () => {
    const page = await app.getJSON(`${path}${path.includes("?") ? "&" : "?"}count=${PAGE}&after=${next}`);
    const tbody = body.querySelector("tbody");
    for (const row of rows(page[key])) tbody.append(el("tr", {}, row.map((c) => el("td", {}, c))));
    next = page.next;
    if (!next) more.remove();
  });
  if (next && first[key].length) box.append(more);
  return [box, first];
}

export async function render(root, args, app) {
  const [[held, first], [devices], [issuers]] = await Promise.all([
    paged(app, "/api/v1/explorer/devices?quarantined=true", "devices",
      ["Device", "Reason code", "Evidence hash", "Since", "Expires after", "Signed by"], quarantineRows,
      "No device is quarantined. Operators quarantine a hijacked device with a record signed by the quorum the network sets."),
    paged(app, "/api/v1/explorer/devices", "devices",
      ["Device", "Status", "Capability", "Gateway", "Maker", "Endorsements"], deviceRows,
      "No device is registered yet. Devices register at start-up with the endorsement of a maker and an operator."),
    paged(app, "/api/v1/explorer/issuers", "issuers",
      ["Key", "Role", "Name", "State", "Admitted by"], issuerRows,
      "No issuer is admitted yet. The committee admits operators, makers and authorities with a signed record."),
  ]);
  held.id = "quarantines";
  put(root,
    el("h1", {}, "Devices"),
    el("p", { class: "note" }, `The device registry at milestone #${first.ledger_index}, as every node holds it. Open a device (or search its id) for its history and a proof of its status.`),
    el("h2", {}, "Quarantined"), held,
    el("h2", {}, "Registered devices"), devices,
    el("h2", {}, "Issuers"), issuers,
  );
}
