// The fixed layouts of the anchors the layers above the ledger put in tagged data, as
// docs/PROTOCOL.md section 12 lists them (all little-endian), read from the first bytes the node
// keeps of each anchor. A layout that does not fit (another version, another size) reads as
// null: the page then shows the size only. Nothing here checks a signature.

import { bytesOf } from "./api.js";

const ascii = (b) => String.fromCharCode(...b);
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** The fields of `b`, in order: [name, kind, size] with kinds u8, u32, u64, tadig, hash. */
function read(b, fields) {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = {};
  let at = 0;
  for (const [name, kind, size] of fields) {
    if (kind === "u8") out[name] = view.getUint8(at);
    else if (kind === "u32") out[name] = view.getUint32(at, true);
    else if (kind === "u64") out[name] = view.getBigUint64(at, true);
    else if (kind === "tadig") out[name] = ascii(b.subarray(at, at + size));
    else out[name] = hex(b.subarray(at, at + size));
    at += size;
  }
  return out;
}

const HEADER = [
  ["version", "u8", 1], ["agreement", "hash", 32], ["sender", "tadig", 5], ["recipient", "tadig", 5],
  ["sequence", "u64", 8], ["count", "u32", 4], ["total_charge", "u64", 8], ["first_start", "u64", 8],
  ["last_start", "u64", 8], ["sealed_utc", "u64", 8], ["root", "hash", 32],
]; // 119 bytes, then a 64-byte signature
const SUMMARY = [
  ["version", "u8", 1], ["batch", "hash", 32], ["sender", "tadig", 5], ["recipient", "tadig", 5],
  ["sequence", "u64", 8], ["fatal", "u8", 1], ["accepted_count", "u32", 4],
  ["accepted_amount", "u64", 8], ["acked_utc", "u64", 8], ["returns_hash", "hash", 32],
]; // 104 bytes, then a 64-byte signature

const money = (v) => v.toLocaleString("en-US");

/** What an anchor says, in words, or null if its tag has no fixed layout or it does not fit. */
export function describe(tag, headHex, size) {
  const b = bytesOf(headHex);
  if (tag === "tanglepay/roaming/batch" && size === 119 + 64 && b[0] === 1) {
    const h = read(b, HEADER);
    return `${h.sender} → ${h.recipient}, batch ${h.sequence}: ${h.count} records, ${money(h.total_charge)} charged`;
  }
  if (tag === "tanglepay/roaming/ack" && size === 104 + 64 && b[0] === 1) {
    const a = read(b, SUMMARY);
    const verdict = a.fatal === 0
      ? `accepted ${a.accepted_count} records, ${money(a.accepted_amount)} to pay`
      : `rejected whole (fatal code ${a.fatal})`;
    return `${a.recipient} answers ${a.sender}'s batch ${a.sequence}: ${verdict}`;
  }
  if (tag === "tanglepay/roaming/agreement" && size > 32 && (size - 32) % 64 === 0) {
    return `agreement ${hex(b.subarray(0, 4))}…, ${(size - 32) / 64} signatures`;
  }
  if (tag === "tanglepay/roaming/dispute" && size === 32 + 64) {
    return `dispute ${hex(b.subarray(0, 4))}…, signed`;
  }
  if (tag.startsWith("tanglepay/charging/") && size === 32) {
    return `session record hash ${hex(b.subarray(0, 4))}…`;
  }
  return null;
}
