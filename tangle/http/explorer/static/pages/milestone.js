// One milestone: its signers, cone, inclusion root, and the milestones either side.

import { el, facts, messageLink, milestoneLink, problem, short, table, time, put } from "../api.js";

export async function render(root, [text], app) {
  const index = Number(text);
  if (!Number.isInteger(index) || index < 1) {
    put(root, problem("Not a milestone index", "Milestones are numbered from 1; type a number into the search box."));
    return;
  }
  let milestone, listed;
  try {
    [milestone, listed] = await Promise.all([
      app.getJSON(`/api/v1/milestones/${index}`),
      app.getJSON(`/api/v1/explorer/milestones?before=${index + 1}&count=1`),
    ]);
  } catch (err) {
    if (err.code === "unknown_milestone" || err.code === "invalid_parameter") {
      put(root, problem(`No milestone #${index} yet`, "This node has not applied it: it may not be issued yet. The milestones page lists those applied."));
      return;
    }
    throw err;
  }
  const row = listed.milestones.find((m) => m.index === index);
  const cone = row && row.cone;
  put(root, 
    el("h1", {}, "Milestone #" + index),
    el("nav", { class: "pager", "aria-label": "Neighbours" },
      index > 1 ? milestoneLink(index - 1) : null, " ",
      index < listed.confirmed_milestone_index ? milestoneLink(index + 1) : el("span", { class: "note" }, "latest")),
    facts([
      ["Milestone id", el("span", { class: "mono wrap" }, milestone.milestone_id)],
      ["Message", messageLink(milestone.message_id)],
      ["Issued", time(milestone.timestamp_ms)],
      ["Applied here", cone ? time(cone.applied_at_ms) : "before this node started"],
      ["Cone (newly referenced)", cone ? cone.referenced : "not counted (applied before this node started)"],
      ["Transactions included", cone ? cone.included : "–"],
      ["Conflicting", cone ? cone.conflicting : "–"],
      ["Inclusion root", el("span", { class: "mono wrap", id: "inclusion-root" }, milestone.applied_merkle_root)],
      ["Previous", el("span", { class: "mono" }, short(milestone.previous, 16))],
      ["Parents", el("span", {}, milestone.parents.map((p) => [messageLink(p), " "]))],
    ]),
    el("h2", {}, `Signers (${milestone.signatures.length})`),
    table(["Public key"], milestone.signatures.map((s) => [el("span", { class: "mono" }, s.public_key)]), "Unsigned."),
    milestone.key_set_change
      ? el("p", { class: "note" }, `Changes the committee from #${milestone.key_set_change.activation_index}: ${milestone.key_set_change.threshold} of ${milestone.key_set_change.public_keys.length}.`)
      : null,
  );
}
