// The live DAG on a canvas: messages placed by arrival time (newest on the right) and a lane
// from their id, edges to their parents, coloured by state; milestones large, the latest
// milestone's cone ringed. Pause, zoom (wheel, + and -), click or Enter to open a message.
//
// The graph is drawn into a layer twice a second (as Hornet pushes its updates every 500 ms),
// and at once when a milestone arrives or the view changes (zoom, size, selection, pause);
// every other animation frame only scrolls that layer, so a frame stays cheap however many
// vertices are held.

export const COLOURS = {
  pending: "#8a8f98",
  solid: "#4fa3f7",
  referenced: "#a77bf3",
  included: "#3ecf8e",
  conflicting: "#f2545b",
  milestone: "#f5b942",
};
const MARGIN = 14;
const STATE_ORDER = ["pending", "solid", "referenced", "included", "conflicting"];
const RENDER_EVERY_MS = 500;
const BACKGROUND = "#11141a";

export class DagView {
  constructor(canvas, store, { onOpen, metrics }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { alpha: false });
    this.layer = document.createElement("canvas");
    this.layerCtx = this.layer.getContext("2d", { alpha: false });
    this.layerAt = 0; // the time the layer shows; 0: draw it again
    this.store = store;
    this.onOpen = onOpen;
    this.metrics = metrics;
    this.pxPerSecond = 40;
    this.userZoomed = false;
    this.paused = false;
    this.frozenAt = 0;
    this.selected = null;
    this.visible = []; // the vertices of the layer, with their x and y at `layerAt`
    this.frameNumber = 0;
    this.running = false;
    this.lastFrame = 0;
    canvas.addEventListener("click", (e) => this.click(e));
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.zoom(e.deltaY < 0 ? 1.25 : 0.8);
    }, { passive: false });
    canvas.addEventListener("keydown", (e) => this.key(e));
  }

  start() {
    this.running = true;
    const frame = (t) => {
      if (!this.running) return;
      if (this.lastFrame) this.metrics.frame(t - this.lastFrame);
      this.lastFrame = t;
      const started = performance.now();
      this.draw();
      this.metrics.work(performance.now() - started, this.visible.length);
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  stop() {
    this.running = false;
  }

  setPaused(paused) {
    this.paused = paused;
    this.frozenAt = Date.now();
    this.layerAt = 0;
  }

  zoom(factor) {
    this.userZoomed = true;
    this.pxPerSecond = Math.min(400, Math.max(4, this.pxPerSecond * factor));
    this.layerAt = 0;
  }

  select(vertex) {
    this.selected = vertex;
    this.layerAt = 0;
  }

  /** Until the person zooms, the time axis shows every vertex held. */
  fit(width, now) {
    const oldest = this.store.vertices.values().next().value;
    if (this.userZoomed || oldest === undefined) return;
    const span = Math.max(2, (now - oldest.seen) / 1000);
    this.pxPerSecond = Math.min(400, Math.max(4, (width - 2 * MARGIN) / span));
  }

  size() {
    const ratio = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight;
    const bw = Math.round(w * ratio), bh = Math.round(h * ratio);
    if (this.canvas.width !== bw || this.canvas.height !== bh) {
      this.canvas.width = this.layer.width = bw;
      this.canvas.height = this.layer.height = bh;
      this.layerAt = 0;
    }
    return [w, h, ratio];
  }

  draw() {
    const [w, h, ratio] = this.size();
    const now = this.paused ? this.frozenAt : Date.now();
    const store = this.store;
    const due =
      !this.layerAt ||
      (!this.paused &&
        (now - this.layerAt >= RENDER_EVERY_MS || // the regular update
          store.pendingPaint.length > 0 || // a milestone: shown at once
          (this.visible.length === 0 && store.vertices.size > 0))); // the first messages
    if (due) this.render(w, h, ratio, now);
    const ctx = this.ctx;
    const shift = ((now - this.layerAt) * this.pxPerSecond) / 1000;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.drawImage(this.layer, -Math.round(shift * ratio), 0);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    if (this.paused) {
      ctx.fillStyle = "rgba(255,255,255,0.8)";
      ctx.font = "11px system-ui, sans-serif";
      ctx.fillText("paused", 10, 16);
    }
  }

  /** Draw the graph as it is at `now` into the layer (one pass, nothing allocated per vertex:
   *  each drawn vertex gets its position and this render's number; edges go to parents drawn
   *  in the same render). */
  render(w, h, ratio, now) {
    const started = performance.now();
    if (!this.paused) this.fit(w, now);
    const ctx = this.layerCtx;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    const right = w - MARGIN;
    const scale = this.pxPerSecond / 1000;
    const laneHeight = h - 2 * MARGIN;
    const frame = ++this.frameNumber;
    const store = this.store;
    const visible = this.visible;
    visible.length = 0;
    const oldest = now - (right + MARGIN) / scale;
    for (const v of store.vertices.values()) {
      if (v.seen < oldest || v.seen > now) continue;
      v.x = right - (now - v.seen) * scale;
      v.y = MARGIN + (v.kind === "milestone" ? 0.5 : v.lane) * laneHeight;
      v.frame = frame;
      visible.push(v);
    }
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, w, h);
    ctx.lineWidth = 1;
    ctx.strokeStyle = "rgba(150,160,180,0.22)";
    ctx.beginPath();
    const vertices = store.vertices;
    for (const v of visible) {
      for (const p of v.parents) {
        const to = vertices.get(p);
        if (to !== undefined && to.frame === frame) {
          ctx.moveTo(v.x, v.y);
          ctx.lineTo(to.x, to.y);
        }
      }
    }
    ctx.stroke();
    const latestCone = store.milestones.length ? store.milestones[store.milestones.length - 1].index : -1;
    ctx.fillStyle = "rgba(245,185,66,0.25)";
    for (const v of visible) if (v.cone === latestCone) ctx.fillRect(v.x - 5, v.y - 5, 10, 10);
    for (const state of STATE_ORDER) {
      ctx.fillStyle = COLOURS[state];
      for (const v of visible) {
        if (v.state === state && v.kind !== "milestone") ctx.fillRect(v.x - 2.5, v.y - 2.5, 5, 5);
      }
    }
    ctx.fillStyle = COLOURS.milestone;
    ctx.font = "11px system-ui, sans-serif";
    for (const v of visible) {
      if (v.kind !== "milestone") continue;
      ctx.beginPath();
      ctx.arc(v.x, v.y, 7, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillText("#" + v.index, v.x - 10, v.index % 2 ? v.y - 11 : v.y + 20);
    }
    const selected = this.selected;
    if (selected && selected.frame === frame) {
      ctx.strokeStyle = "#ffffff";
      ctx.lineWidth = 2;
      ctx.strokeRect(selected.x - 6, selected.y - 6, 12, 12);
    }
    this.layerAt = now;
    this.metrics.rendered(performance.now() - started);
    if (!this.paused && store.pendingPaint.length) {
      const painted = Date.now();
      for (const applied of store.pendingPaint) this.metrics.painted(painted - applied);
      store.pendingPaint.length = 0;
    }
  }

  /** Where the layer's vertices are on the canvas now. */
  shift() {
    const now = this.paused ? this.frozenAt : Date.now();
    return ((now - this.layerAt) * this.pxPerSecond) / 1000;
  }

  click(event) {
    const rect = this.canvas.getBoundingClientRect();
    const px = event.clientX - rect.left + this.shift(), py = event.clientY - rect.top;
    let best = null, bestDistance = 12 * 12;
    for (const v of this.visible) {
      const d = (v.x - px) ** 2 + (v.y - py) ** 2;
      if (d < bestDistance) [best, bestDistance] = [v, d];
    }
    if (best) {
      this.select(best);
      this.onOpen(best);
    }
  }

  key(event) {
    const ordered = [...this.visible].sort((a, b) => a.x - b.x);
    const at = ordered.indexOf(this.selected);
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      if (!ordered.length) return;
      const step = event.key === "ArrowLeft" ? -1 : 1;
      const next = at < 0 ? ordered.length - 1 : Math.min(ordered.length - 1, Math.max(0, at + step));
      this.select(ordered[next]);
      if (this.onSelect) this.onSelect(this.selected);
    } else if (event.key === "Enter" && this.selected) {
      this.onOpen(this.selected);
    }
  }
}
