// One address: balance, unspent outputs, and the transactions touching it in the node's
// recent history.

import { amount, channelLink, el, facts, messageLink, milestoneLink, problem, short, table, put } from "../api.js";

export async function render(root, [address], app) {
  let balance, outputs, history;
  try {
    [balance, outputs, history] = await Promise.all([
      app.getJSON(`/api/v1/addresses/${address}/balance`),
      app.getJSON(`/api/v1/addresses/${address}/outputs`),
      app.getJSON(`/api/v1/explorer/addresses/${address}/history`),
    ]);
  } catch (err) {
    if (err.code === "invalid_address") {
      put(root, problem("Not an address of this network", `${err.message}. Addresses look like tpdev1… (or 64 hex digits).`));
      return;
    }
    throw err;
  }
  put(root, 
    el("h1", {}, "Address"),
    facts([
      ["Address", el("span", { class: "mono wrap" }, balance.address)],
      ["Hex", el("span", { class: "mono wrap" }, balance.address_hex)],
      ["Balance", el("strong", { id: "balance" }, amount(balance.balance))],
      ["Unspent outputs", balance.output_count],
      ["As of milestone", milestoneLink(balance.ledger_index)],
    ]),
    el("h2", {}, "Unspent outputs"),
    table(["Output", "Type", "Amount"], outputs.outputs.map((o) => [
      el("span", { class: "mono" }, short(o.output_id, 16)),
      o.type === "channel" ? el("span", {}, "channel ", channelLink(o.channel_id)) : o.type,
      amount(o.amount),
    ]), "No unspent outputs: this address holds nothing now."),
    el("h2", {}, "Recent transactions"),
    table(["Message", "Milestone", "Result"], history.transactions.map((t) => [
      messageLink(t.message_id), milestoneLink(t.milestone_index),
      t.inclusion === "included" ? "included" : "conflicting: " + t.conflict,
    ]), "None since this node started (it keeps the latest 100 of each address)."),
  );
}
