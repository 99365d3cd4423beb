// The live page: the DAG as it grows, charts of the rates, the latest milestones and refusals.

import { el, milestoneLink, messageLink, table, time, duration, put } from "../api.js";
import { Chart } from "../charts.js";
import { COLOURS, DagView } from "../dag.js";

export async function render(root, args, app) {
  const { store } = app;
  const pause = el("button", { type: "button", "aria-pressed": "false", title: "Pause or resume (space)" }, "Pause");
  const zoomIn = el("button", { type: "button", title: "Zoom in (+)" }, "+");
  const zoomOut = el("button", { type: "button", title: "Zoom out (−)" }, "−");
  const legend = el("ul", { class: "legend", "aria-label": "Colours" },
    Object.entries(COLOURS).map(([name, colour]) =>
      el("li", {}, el("span", { class: "swatch", style: { background: colour } }), name)));
  const canvas = el("canvas", {
    id: "dag", tabindex: "0",
    "aria-label": "Live DAG: newest messages on the right. Arrow keys select a message, Enter opens it, space pauses, + and − zoom.",
  });
  const empty = el("p", { class: "overlay" },
    "Waiting for messages… none has arrived since this page opened. Start traffic with ./dev devnet, or send a transfer to this node.");
  const selection = el("p", { class: "note", id: "selection" }, "Click a message to open it; milestones are gold, the latest milestone's cone is ringed.");
  const chartCanvases = [0, 1, 2].map(() => el("canvas", { class: "chart" }));
  const charts = [
    new Chart(chartCanvases[0], { label: "messages", unit: "/s", colour: "#4fa3f7" }),
    new Chart(chartCanvases[1], { label: "confirmed transfers", unit: "/s", colour: "#3ecf8e" }),
    new Chart(chartCanvases[2], { label: "confirmation latency p50", unit: "", colour: "#f5b942", format: (v) => duration(Math.round(v)) }),
  ];
  const milestones = el("div", { id: "recent-milestones" });
  const refusals = el("div", { id: "recent-refusals" });
  put(root, 
    el("section", { class: "live" },
      el("div", { class: "toolbar" }, el("h1", {}, "Live tangle"), pause, zoomOut, zoomIn, legend),
      el("div", { class: "stage" }, canvas, empty),
      selection,
      el("div", { class: "charts" }, chartCanvases)),
    el("div", { class: "columns" },
      el("section", {}, el("h2", {}, "Latest milestones"), milestones),
      el("section", {}, el("h2", {}, "Refused recently"), refusals)),
  );

  const view = new DagView(canvas, store, {
    metrics: app.metrics,
    onOpen: (v) => app.navigate("#/message/" + v.id),
  });
  view.onSelect = (v) => selection.replaceChildren("Selected ", messageLink(v.id), ` (${v.kind}, ${v.state}); Enter opens it.`);
  const setPaused = (paused) => {
    view.setPaused(paused);
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
  };
  pause.addEventListener("click", () => setPaused(!view.paused));
  zoomIn.addEventListener("click", () => view.zoom(1.25));
  zoomOut.addEventListener("click", () => view.zoom(0.8));
  const keys = (event) => {
    if (["INPUT", "TEXTAREA"].includes(document.activeElement.tagName)) return;
    if (event.key === " " && document.activeElement.tagName !== "BUTTON") {
      event.preventDefault();
      setPaused(!view.paused);
    } else if (event.key === "+" || event.key === "=") view.zoom(1.25);
    else if (event.key === "-") view.zoom(0.8);
  };
  document.addEventListener("keydown", keys);

  const listMilestones = () => {
    const rows = store.milestones.slice(-8).reverse().map((m) => [
      milestoneLink(m.index), time(m.applied_at_ms), m.referenced, m.included, m.conflicting,
    ]);
    milestones.replaceChildren(table(["Milestone", "Applied", "Cone", "Included", "Conflicting"], rows,
      "No milestone since this page opened. The coordinator issues one every interval; is it running?"));
  };
  const listRefusals = async () => {
    try {
      const body = await app.getJSON("/api/v1/explorer/refusals");
      refusals.replaceChildren(table(["When", "Message", "Code"],
        body.refusals.slice(0, 8).map((r) => [time(r.at_ms), messageLink(r.message_id), r.code]),
        "Nothing refused since the node started."));
    } catch (err) {
      refusals.replaceChildren(el("p", { class: "note" }, "Refusals unavailable: " + err.message));
    }
  };
  const off = store.on((kind) => {
    if (kind === "milestone" || kind === "primed") listMilestones();
  });
  const tick = () => {
    empty.hidden = store.vertices.size > 0;
    const rates = store.rates(60);
    charts[0].draw(rates.map((r) => r.messages));
    charts[1].draw(rates.map((r) => r.confirmed));
    charts[2].draw(rates.map((r) => r.latency));
  };
  listMilestones();
  listRefusals();
  tick();
  const timers = [setInterval(tick, 500), setInterval(listRefusals, 5000)];
  view.start();
  return () => {
    view.stop();
    off();
    timers.forEach(clearInterval);
    document.removeEventListener("keydown", keys);
  };
}
