// Payment channels recent transactions opened or used, with their state on the ledger.

import { amount, channelLink, el, milestoneLink, table } from "../api.js";
import { channelState } from "./channel.js";

export async function render(root, args, app) {
  const body = await app.getJSON("/api/v1/explorer/channels");
  root.append(
    el("h1", {}, "Payment channels"),
    el("p", { class: "note" }, "Channels that transactions confirmed since this node started opened, paid, closed or challenged, most recent first."),
    table(["Channel", "State", "Deposit", "Payee balance", "Last", "At"], body.channels.map((c) => [
      channelLink(c.channel_id),
      c.output ? channelState(c.output) : "settled",
      c.output ? amount(c.output.amount) : "–",
      c.output ? amount(c.output.payee_balance) : "–",
      c.last_op.replace("_", " "),
      milestoneLink(c.milestone_index),
    ]), "No channel opened or used since this node started. ./dev devnet runs a device paying per use over one."),
  );
}
