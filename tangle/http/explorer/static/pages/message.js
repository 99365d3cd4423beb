// One message: its payload decoded, its metadata, when this node received it and when a
// milestone confirmed it, and in words why it is pending, refused or conflicting.

import {
  addressLink, amount, channelLink, deviceLink, duration, el, facts, keyText, messageLink,
  milestoneLink, problem, short, table, time, put, utf8 } from "../api.js";
import { describe } from "../layouts.js";
import { proofBox } from "./device.js";

function readable(text) {
  if (text === null) return "(not UTF-8 text)";
  return /[\u0000-\u0008\u000e-\u001f\u007f]/.test(text) ? "(binary: control characters)" : text;
}

function record(p, about) {
  const b = p.body;
  const subject = b.kind === "admit_issuer"
    ? ["Issuer", keyText(b.issuer)]
    : ["Device", el("span", { id: "record-device" }, deviceLink(about.subject))];
  const rows = [["Record", b.kind.replace("_", " ")], subject];
  if (b.kind === "register") rows.push(["Device key", keyText(b.device_key)], ["Maker", keyText(b.maker)], ["Capability", b.capability]);
  if (b.kind === "admit_issuer") rows.push(["Role", b.role], ["Admitted", b.admitted ? "yes" : "no (removed)"]);
  if (b.kind === "set_status") rows.push(["Status", b.status]);
  if (b.kind === "quarantine") {
    rows.push(["Reason code", b.reason], ["Evidence hash", el("span", { class: "mono wrap" }, b.evidence_hash)],
      ["Expires after", "milestone #" + b.expires_after]);
  }
  if ("serial" in b) rows.push(["Serial", b.serial]);
  rows.push(["Signed by", el("span", {}, p.signatures.map((s) => [keyText(s.public_key), " "]))]);
  return el("section", {}, el("h2", {}, "Device registry record"), facts(rows),
    el("p", { class: "note" }, "Whether the signers are the ones the record needs is a ledger rule: a record that breaks it is conflicting, and changes nothing."));
}

const CONFLICTS = {
  input_not_found: "an input it spends is not on the ledger: it was never created, or it was spent and pruned before this transaction was ordered.",
  input_spent: "an input it spends was already spent by a transaction the milestone ordered first (a double spend); the earlier one won.",
  amount_mismatch: "its outputs do not add up to the inputs it spends.",
  unlock_address_mismatch: "a signature does not unlock the address that owns the input it spends.",
  // device registry records (docs/PROTOCOL.md section 11)
  committee_quorum_unmet: "an issuer admission needs the signatures of the committee's threshold, and no other key.",
  device_record_replayed: "its serial is not above the last one applied: a replay or an old record.",
  device_already_registered: "the device is registered already.",
  device_key_in_use: "the key is another device's current key.",
  device_key_not_signed: "the device's key (for a rotation, the old and the new key) did not sign it.",
  endorser_not_admitted: "a signer is not an issuer the committee admitted for this.",
  endorsement_policy_unmet: "its endorsements do not meet the network's policy (the maker and enough operators).",
  gateway_not_usable: "the gateway it names is not a registered, active, full-function device.",
  device_not_registered: "the device it names is not registered.",
  device_status_invalid: "the device is revoked, or the status does not change.",
  quarantine_quorum_unmet: "fewer operators signed than the network's quarantine threshold.",
  quarantine_expired: "its expiry is before the milestone that would apply it.",
  not_quarantined: "no quarantine holds to lift.",
};

function state(meta, kind) {
  if (!meta.solid) return "Pending: some of its parents (or theirs) have not reached this node yet; it asked its peers for them.";
  if (meta.referenced_by === null) return "Solid, not confirmed yet: waiting for a milestone to reference it.";
  if (meta.inclusion === "conflicting") return `Conflicting: referenced by milestone #${meta.referenced_by} but kept out of the ${kind === "device_record" ? "registry" : "ledger"} because ${CONFLICTS[meta.conflict] || meta.conflict}`;
  if (meta.inclusion === "included" && kind === "device_record") return `Confirmed: milestone #${meta.referenced_by} applied this record to the device registry.`;
  if (meta.inclusion === "included") return `Confirmed: milestone #${meta.referenced_by} included its transaction in the ledger.`;
  return `Referenced by milestone #${meta.referenced_by}; it carries no transaction.`;
}

function payload(p, about) {
  if (p.type === "transaction") {
    return el("section", {},
      el("h2", {}, "Transaction ", el("span", { class: "mono small" }, short(p.transaction_id, 16))),
      el("h3", {}, "Inputs"),
      table(["Output id"], p.inputs.map((i) => [el("span", { class: "mono" }, short(i, 16))]), "No inputs."),
      el("h3", {}, "Outputs"),
      table(["#", "Type", "Address or channel", "Amount"], p.outputs.map((o, i) => [
        i, o.type, o.type === "channel" ? channelLink(o.channel_id) : addressLink(o.address), amount(o.amount),
      ]), "No outputs."),
      el("h3", {}, "Unlocks"),
      table(["#", "Type", "Detail"], p.unlocks.map((u, i) => [
        i, u.type,
        u.type === "signature" ? el("span", { class: "mono" }, "key " + short(u.public_key))
          : u.type === "reference" ? "same as unlock " + u.index
          : el("span", {}, u.op + " on ", channelLink(u.channel_id)),
      ]), "No unlocks."),
      p.memo ? facts([["Memo", el("span", { class: "mono" }, p.memo)]]) : null);
  }
  if (p.type === "device_record") return record(p, about);
  if (p.type === "milestone") {
    return el("section", {}, el("h2", {}, "Milestone ", milestoneLink(p.index)),
      facts([["Issued", time(p.timestamp_ms)], ["Signers", p.signatures.length],
        ["Inclusion root", el("span", { class: "mono" }, p.applied_merkle_root)]]));
  }
  const tag = utf8(p.tag);
  const says = tag === null ? null : describe(tag, p.data, p.data.length / 2);
  return el("section", {}, el("h2", {}, "Tagged data"),
    facts([
      ["Tag", el("span", { class: "mono" }, tag === null ? p.tag : tag || "(none)")],
      ["Size", p.data.length / 2 + " bytes"],
      says ? ["Says", el("span", { id: "anchor-says" }, says)] : null,
      ["Data (hex)", el("span", { class: "mono wrap" }, p.data || "(empty)")],
      ["As text", readable(utf8(p.data))],
    ]),
    tag && tag.startsWith("tanglepay/") ? el("p", { class: "note" }, "An anchor of the layers above the ledger (payments, roaming, charging, device data): ", el("a", { href: "#/anchors" }, "all anchors"), ".") : null);
}

export async function render(root, [id], app) {
  if (!/^[0-9a-f]{64}$/i.test(id || "")) {
    put(root, problem("Not a message id", "A message id is 64 hex digits; paste one into the search box."));
    return;
  }
  // Asked first: a search is always answered, so an unknown id logs no failed request.
  const found = await app.getJSON(`/api/v1/explorer/search?q=${id}`);
  if (found.kind === "refused") {
    const refused = await app.getJSON(`/api/v1/explorer/refusals/${id}`);
    put(root, problem(`This node refused this message (${refused.code})`,
      `At ${time(refused.at_ms)}: ${refused.reason}. A refused message is not stored or passed on; fix what the reason names and send it again.`));
    return;
  }
  if (found.kind !== "message") {
    put(root, problem("This node has no such message",
      "It never reached this node, was pruned, or was refused long ago (the node remembers its last 1,024 refusals). Check the id, or look on another node."));
    return;
  }
  const [message, meta, timing] = await Promise.all([
    app.getJSON(`/api/v1/messages/${id}`),
    app.getJSON(`/api/v1/messages/${id}/metadata`),
    app.getJSON(`/api/v1/explorer/messages/${id}/timing`),
  ]);
  const about = message.payload.type === "device_record" ? await app.getJSON(`/api/v1/explorer/messages/${id}/subject`) : null;
  put(root, 
    el("h1", {}, "Message ", el("span", { class: "mono small" }, short(id, 16))),
    el("p", { class: "state " + (meta.inclusion === "conflicting" ? "bad" : meta.referenced_by ? "good" : "") , id: "message-state" }, state(meta, message.payload.type)),
    facts([
      ["Id", el("span", { class: "mono wrap" }, id)],
      ["Payload", message.payload.type],
      ["Parents", el("span", {}, message.parents.map((p) => [messageLink(p), " "]))],
      ["Solid", meta.solid ? "yes" : "no"],
      ["Milestone", meta.referenced_by === null ? "not yet" : milestoneLink(meta.referenced_by)],
      ["Inclusion", meta.inclusion.replace("_", " ")],
      ["Conflict", meta.conflict],
      ["Arrived here", timing.arrived_at_ms === null ? "before this node started (not recorded)" : time(timing.arrived_at_ms)],
      ["Confirmed here", time(timing.confirmed_at_ms)],
      ["Arrival to confirmation", el("strong", { id: "confirmation-time" }, duration(timing.confirmation_ms))],
      ["Nonce", message.nonce],
    ]),
    payload(message.payload, about),
    message.payload.type === "tagged_data" && utf8(message.payload.tag) === "tanglepay/anchor" && meta.referenced_by !== null
      ? proofBox(`message=${id}`, `The file holds this anchor message with its audit path to the inclusion root of milestone #${meta.referenced_by}, and that milestone with its committee signatures. It names no device, so the check names "registry" as the first missing link; a gateway adds the device's entry, the reading and its batch path.`)
      : null,
  );
}
