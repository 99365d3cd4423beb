// Payment channels recent transactions opened or used, with their state on the ledger; read
// again every few seconds.

import { amount, channelLink, el, milestoneLink, put, table } from "../api.js";
import { channelState } from "./channel.js";

const REFRESH_MS = 3000;

function rows(body) {
  return table(["Channel", "State", "Deposit", "Payee balance", "Last", "At"], body.channels.map((c) => [
    channelLink(c.channel_id),
    c.output ? channelState(c.output) : "settled",
    c.output ? amount(c.output.amount) : "–",
    c.output ? amount(c.output.payee_balance) : "–",
    c.last_op.replace("_", " "),
    milestoneLink(c.milestone_index),
  ]), "No channel opened or used since this node started. ./dev devnet runs a device paying a meter per reading over one; it appears here within a few milestones.");
}

export async function render(root, args, app) {
  const list = el("div", { id: "channel-list" }, rows(await app.getJSON("/api/v1/explorer/channels")));
  put(root,
    el("h1", {}, "Payment channels"),
    el("p", { class: "note" }, "Channels that transactions confirmed since this node started opened, topped up, closed or challenged, most recent first. Payments inside a channel stay off the ledger."),
    list,
  );
  const timer = setInterval(async () => {
    try {
      list.replaceChildren(rows(await app.getJSON("/api/v1/explorer/channels")));
    } catch (err) {
      list.replaceChildren(el("p", { class: "note" }, "Could not read the channels: " + err.message));
    }
  }, REFRESH_MS);
  return () => clearInterval(timer);
}
