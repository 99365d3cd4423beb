// The applied milestones, newest first, a page at a time.

import { el, messageLink, milestoneLink, table, time, put } from "../api.js";

export async function render(root, [before], app) {
  const query = before ? `?count=25&before=${Number(before)}` : "?count=25";
  const body = await app.getJSON("/api/v1/explorer/milestones" + query);
  const rows = body.milestones.map((m) => [
    milestoneLink(m.index), messageLink(m.message_id), time(m.timestamp_ms),
    m.cone ? m.cone.referenced : "–", m.cone ? m.cone.included : "–", m.cone ? m.cone.conflicting : "–",
  ]);
  const last = body.milestones[body.milestones.length - 1];
  put(root, 
    el("h1", {}, "Milestones"),
    el("p", { class: "note" }, `Confirmed: #${body.confirmed_milestone_index}. Cones are counted by this node as it applies milestones ("–": applied before it started).`),
    table(["Index", "Message", "Issued", "Cone", "Included", "Conflicting"], rows,
      "No milestone applied yet. The coordinator issues them; start it (./dev devnet does) and wait an interval."),
    last && last.index > 1 ? el("p", {}, el("a", { href: `#/milestones/${last.index}` }, "Older →")) : null,
  );
}
