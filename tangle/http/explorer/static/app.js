// The explorer's shell: hash routes to page modules, the search box, the status line, and the
// one live store every page shares. Adding a page: a module under pages/ exporting
// `render(root, args, app)` (returning an optional cleanup function) and one line in ROUTES.

import { getJSON, problem } from "./api.js";
import { resolve } from "./search.js";
import { LiveStore } from "./stream.js";

const ROUTES = {
  "": "live",
  milestones: "milestones",
  milestone: "milestone",
  message: "message",
  address: "address",
  channels: "channels",
  channel: "channel",
  peers: "peers",
  devices: "devices",
  device: "device",
  anchors: "anchors",
};
const SECTIONS = { milestone: "milestones", channel: "channels", device: "devices" };

// What the benchmark (benchmarks/explorer.py) reads: frame intervals (requestAnimationFrame
// deltas), the work of each frame and of each full drawing of the graph, the time from a
// milestone leaving the node to its drawing, when the first frame with messages was drawn, and
// tasks over 50 ms.
const metrics = {
  frames: [],
  works: [],
  renders: [],
  eventToPaint: [],
  firstDagFrameMs: null,
  longTasks: 0,
  frame(ms) {
    if (this.frames.length < 20000) this.frames.push(ms);
  },
  rendered(ms) {
    if (this.renders.length < 20000) this.renders.push(ms);
  },
  work(ms, drawn) {
    if (this.works.length < 20000) this.works.push(ms);
    if (drawn && this.firstDagFrameMs === null) this.firstDagFrameMs = performance.now();
  },
  painted(ms) {
    if (this.eventToPaint.length < 20000) this.eventToPaint.push(ms);
  },
};
if (window.PerformanceObserver && PerformanceObserver.supportedEntryTypes.includes("longtask")) {
  new PerformanceObserver((list) => (metrics.longTasks += list.getEntries().length)).observe({ type: "longtask" });
}
const store = new LiveStore({ cap: 5000 });
const app = { store, getJSON, metrics, navigate: (hash) => (location.hash = hash) };
window.__explorer = { store, metrics, ready: false, rendered: "" };

let cleanup = null;
let generation = 0;
let first = true;

async function route() {
  const [name = "", ...args] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const page = ROUTES[name];
  const root = document.getElementById("view");
  const mine = ++generation;
  if (cleanup) cleanup();
  cleanup = null;
  for (const a of document.querySelectorAll("nav a")) {
    a.toggleAttribute("aria-current", a.dataset.page === (SECTIONS[page] || page));
  }
  root.replaceChildren();
  if (!page) {
    root.append(problem("No such page", `"#/${name}" is not a page of the explorer; use the links above or search.`));
    return;
  }
  try {
    const module = await import(`./pages/${page}.js`);
    if (mine !== generation) return;
    const done = await module.render(root, args, app);
    if (mine !== generation) {
      if (done) done();
      return;
    }
    cleanup = done || null;
    const heading = root.querySelector("h1");
    document.title = `${heading ? heading.textContent : page} · tanglepay explorer`;
    if (!first) root.focus({ preventScroll: true }); // keyboard users continue in the page
    window.__explorer.rendered = location.hash || "#/";
  } catch (err) {
    if (mine !== generation) return;
    root.replaceChildren(problem(
      err.code === "unreachable" ? "The node does not answer" : "This page could not be shown",
      err.code === "unreachable" ? "Check that the node is running, then reload." : `${err.message} (${err.code || err.name})`,
    ));
    window.__explorer.rendered = location.hash || "#/";
  }
}

function status() {
  const line = document.getElementById("status");
  const last = store.milestones[store.milestones.length - 1];
  const ms = last ? `milestone #${last.index}` : "waiting for a milestone";
  line.textContent = `${store.connected ? "live" : "reconnecting…"} · ${ms} · ${store.vertices.size} messages in view`;
  line.classList.toggle("down", !store.connected);
}

document.getElementById("search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const box = document.getElementById("search-box");
  const found = await resolve(box.value, getJSON);
  if (found.route) {
    box.setCustomValidity("");
    box.blur();
    location.hash = found.route;
  } else {
    box.setCustomValidity(found.error);
    box.reportValidity();
  }
});
document.getElementById("search-box").addEventListener("input", (e) => e.target.setCustomValidity(""));
document.addEventListener("keydown", (event) => {
  const typing = ["INPUT", "TEXTAREA"].includes(document.activeElement.tagName);
  if (event.key === "/" && !typing) {
    event.preventDefault();
    document.getElementById("search-box").focus();
  }
});

window.addEventListener("hashchange", route);
store.on((kind) => {
  if (kind === "milestone" || kind === "status" || kind === "primed") status();
});
store.connect();
Promise.all([getJSON("/api/v1/explorer/recent"), getJSON("/api/v1/explorer/milestones?count=10")])
  .then(([recent, milestones]) => store.prime(recent, milestones))
  .catch(() => status());
setInterval(status, 1000);
route().then(() => {
  first = false;
  window.__explorer.ready = true;
});
