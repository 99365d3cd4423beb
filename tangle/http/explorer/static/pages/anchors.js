// What the payment layer anchors on the ledger as tagged data: roaming agreements, batch headers,
// acknowledgements, disputes and bars between carriers, charging session commitments, device
// data anchors. Grouped by tag (docs/PROTOCOL.md section 12 lists them), with their size,
// confirmation and, for the fixed layouts listed there, what they say (`layouts.js`, in the
// browser: the node does not decode them). Read again when the live stream shows a change.

import { duration, el, facts, messageLink, milestoneLink, put, table, time } from "../api.js";
import { describe } from "../layouts.js";

const REFRESH_MS = 3000;
const GROUPS = [
  ["tanglepay/roaming/agreement", "Roaming agreements", "Signed agreements between two carriers (the hash of the agreement version and its signatures)."],
  ["tanglepay/roaming/batch", "Roaming batch headers", "A visited carrier's signed header of a batch of usage records it bills to a home carrier."],
  ["tanglepay/roaming/ack", "Roaming acknowledgements", "A home carrier's signed acknowledgement of a batch header (its summary and signature)."],
  ["tanglepay/roaming/dispute", "Roaming disputes", "A dispute between carriers over billed usage (its id and signature)."],
  ["tanglepay/roaming/bar", "Roaming bars", "A home carrier stops paying for a subscriber's usage from a given second."],
  ["tanglepay/charging/", "Charging commitments", "A charging system commits the BLAKE2b-256 of each billed session's meter record, so a driver can check the energy billed."],
  ["tanglepay/anchor", "Device data anchors", "A gateway anchors the Merkle root of a batch of signed device readings; each reading's proof leads here."],
];

function groupOf(tag) {
  const found = GROUPS.find(([prefix]) => tag === prefix || tag.startsWith(prefix.endsWith("/") ? prefix : prefix + "/"));
  return found ? found[0] : "other";
}

function rows(anchors, now) {
  return anchors.map((a) => [
    messageLink(a.message_id), el("span", { class: "mono" }, a.tag), a.size + " B",
    describe(a.tag, a.head, a.size) ?? "–", time(a.at_ms),
    a.milestone_index === null
      ? el("span", { class: "note" }, `pending ${duration(Math.max(0, now - a.at_ms))}`)
      : el("span", {}, "confirmed by ", milestoneLink(a.milestone_index)),
  ]);
}

function view(body) {
  const now = Date.now();
  const grouped = new Map([...GROUPS.map(([prefix]) => [prefix, []]), ["other", []]]);
  for (const a of body.anchors) grouped.get(groupOf(a.tag)).push(a);
  const all = [...GROUPS, ["other", "Other tanglepay anchors", "Tags this page does not group."]];
  const seen = all.filter(([prefix]) => grouped.get(prefix).length);
  const unseen = all.filter(([prefix]) => prefix !== "other" && !grouped.get(prefix).length);
  return el("div", {},
    seen.length ? null : el("p", { class: "note" }, "No anchor since this node started. ./dev devnet's traffic anchors what the flows that have landed produce; they appear here within a milestone."),
    seen.map(([prefix, title, about]) => el("section", { class: "anchor-group", "data-prefix": prefix },
      el("h2", {}, `${title} (${grouped.get(prefix).length})`),
      el("p", { class: "note" }, about),
      table(["Message", "Tag", "Size", "Says", "Arrived", "Confirmation"], rows(grouped.get(prefix), now), ""))),
    unseen.length ? el("section", {}, el("h2", {}, "Not seen since this node started"),
      facts(unseen.map(([prefix, title, about]) => [title, el("span", {}, about, " ", el("span", { class: "mono small" }, prefix))]))) : null,
  );
}

export async function render(root, args, app) {
  const read = () => app.getJSON("/api/v1/explorer/anchors?count=500");
  const first = await read();
  const box = el("div", { id: "anchor-groups" }, view(first));
  put(root,
    el("h1", {}, "Ledger anchors"),
    el("p", { class: "note" }, `The latest tagged-data messages whose tag begins "tanglepay/" (this node keeps the last ${first.kept.toLocaleString("en-US")} since it started), newest first. Open one to see its bytes, its milestone and, for a device data anchor, download its inclusion proof.`),
    box,
  );
  // Read again only when the live stream says something changed: a tagged-data message arrived,
  // or a milestone came while an anchor shown was pending; at most once every REFRESH_MS.
  let due = false;
  let pending = first.anchors.some((a) => a.milestone_index === null);
  const off = app.store.on((kind, data) => {
    if (kind === "messages" && data.messages.some((m) => m.kind === "tagged_data")) due = true;
    if (kind === "milestone" && pending) due = true;
  });
  let reading = false;
  const timer = setInterval(async () => {
    if (!due || reading) return;
    due = false;
    reading = true;
    try {
      const body = await read();
      pending = body.anchors.some((a) => a.milestone_index === null);
      box.replaceChildren(view(body));
    } catch (err) {
      due = true; // try again at the next tick
      box.replaceChildren(el("p", { class: "note" }, "Could not read the anchors: " + err.message));
    } finally {
      reading = false;
    }
  }, REFRESH_MS);
  return () => {
    off();
    clearInterval(timer);
  };
}
