// One payment channel: its deposit, balances and whether a close or challenge is in progress.

import { addressLink, amount, el, facts, milestoneLink, problem, short, put } from "../api.js";

export function channelState(o) {
  return o.closing_since ? `closing since #${o.closing_since}` : "open";
}

export async function render(root, [id], app) {
  let body;
  try {
    body = await app.getJSON(`/api/v1/channels/${id}`);
  } catch (err) {
    if (err.code === "unknown_channel" || err.code === "invalid_id") {
      put(root, problem("No such channel on the ledger",
        "A settled channel leaves the ledger; an id is 64 hex digits. The channels page lists those seen recently."));
      return;
    }
    throw err;
  }
  const o = body.output;
  const closing = o.closing_since
    ? `Closing: started at milestone #${o.closing_since}; ${o.bidirectional ? "either party may challenge with a newer co-signed state" : "the payee may still close with a proof"} until #${o.closing_since + o.challenge_period}, then it can be settled.`
    : "Open: the payer can top it up; payments happen off the ledger as signed balance proofs.";
  put(root, 
    el("h1", {}, "Channel ", el("span", { class: "mono small" }, short(id, 16))),
    el("p", { class: "state" + (o.closing_since ? " bad" : " good"), id: "channel-state" }, closing),
    facts([
      ["Channel id", el("span", { class: "mono wrap" }, o.channel_id)],
      ["State", channelState(o)],
      ["Deposit", amount(o.amount)],
      ["Payee balance (on ledger)", amount(o.payee_balance)],
      ["Sequence", o.sequence],
      ["Two-way", o.bidirectional ? "yes" : "no"],
      ["Payer key", el("span", { class: "mono" }, short(o.payer, 16))],
      ["Payee key", el("span", { class: "mono" }, short(o.payee, 16))],
      ["Challenge period", o.challenge_period + " milestones"],
      ["Expiry", "milestone #" + o.expiry],
      ["Output", addressLink(o.address)],
      ["As of milestone", milestoneLink(body.ledger_index)],
    ]),
  );
}
