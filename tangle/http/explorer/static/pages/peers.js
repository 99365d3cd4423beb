// This node, its peers and the latest milestone each reported, as a table and a map.

import { el, facts, table, put } from "../api.js";

function drawMap(canvas, self, peers) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = Math.round(w * ratio);
  canvas.height = Math.round(h * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  const cx = w / 2, cy = h / 2, r = Math.min(w, h) / 2 - 40;
  ctx.font = "12px system-ui, sans-serif";
  ctx.textAlign = "center";
  peers.forEach((p, i) => {
    const a = (2 * Math.PI * i) / Math.max(1, peers.length) - Math.PI / 2;
    const x = cx + r * Math.cos(a), y = cy + r * Math.sin(a);
    ctx.strokeStyle = p.connected ? "#3ecf8e" : "#f2545b";
    ctx.setLineDash(p.connected ? [] : [4, 4]);
    ctx.beginPath();
    ctx.moveTo(cx, cy);
    ctx.lineTo(x, y);
    ctx.stroke();
    ctx.fillStyle = p.connected ? "#3ecf8e" : "#8a8f98";
    ctx.beginPath();
    ctx.arc(x, y, 9, 0, 2 * Math.PI);
    ctx.fill();
    ctx.fillStyle = "#c9d1dc";
    ctx.fillText(`${p.id.slice(0, 8)}  #${p.confirmed_index ?? "?"}`, x, y + 24);
  });
  ctx.setLineDash([]);
  ctx.fillStyle = "#f5b942";
  ctx.beginPath();
  ctx.arc(cx, cy, 12, 0, 2 * Math.PI);
  ctx.fill();
  ctx.fillStyle = "#c9d1dc";
  ctx.fillText(`this node  #${self}`, cx, cy + 28);
}

const REFRESH_MS = 3000;

export async function render(root, args, app) {
  const view = el("div", {});
  put(root, el("h1", {}, "Network"), view);
  await show(view, app);
  const timer = setInterval(() => show(view, app).catch((err) => {
    view.replaceChildren(el("p", { class: "note" }, "Could not read the network: " + err.message));
  }), REFRESH_MS);
  return () => clearInterval(timer);
}

async function show(root, app) {
  const [info, body] = await Promise.all([app.getJSON("/api/v1/info"), app.getJSON("/api/v1/explorer/peers")]);
  root.replaceChildren();
  put(root, 
    facts([
      ["Network id", info.network_id],
      ["Confirmed milestone", "#" + info.confirmed_milestone_index],
      ["Latest milestone seen", "#" + info.latest_milestone_index],
      ["Healthy", info.healthy ? "yes" : "no: its confirmed milestone is old; is the coordinator running?"],
      ["Peers", body.peers === null ? "this node runs without peering" : `${info.peers_connected} connected of ${body.peers.length}`],
    ]),
  );
  if (body.peers === null) return;
  const canvas = el("canvas", { class: "map", role: "img", "aria-label": "This node in the middle, its peers around it; green lines are connections up, dashed red ones down." });
  put(root, 
    canvas,
    table(["Peer", "Connected", "Dialed by us", "Latest milestone", "Behind"], body.peers.map((p) => [
      el("span", { class: "mono" }, p.id.slice(0, 16)), p.connected ? "yes" : "no",
      p.outbound ? "yes" : "no", p.confirmed_index ?? "–",
      p.confirmed_index === null ? "–" : Math.max(0, body.confirmed_milestone_index - p.confirmed_index),
    ]), "No peers: add some to the node's configuration (p2p.peers) or through the admin API."),
  );
  drawMap(canvas, body.confirmed_milestone_index, body.peers);
}
