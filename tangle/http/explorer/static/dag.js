// The live DAG on a canvas: messages placed by arrival time (newest on the right) and a lane
// from their id, edges to their parents, coloured by state; milestones large, the latest
// milestone's cone ringed. Pause, zoom (wheel, + and -), click or Enter to open a message.

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

export class DagView {
  constructor(canvas, store, { onOpen, metrics }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { alpha: false });
    this.store = store;
    this.onOpen = onOpen;
    this.metrics = metrics;
    this.pxPerSecond = 40;
    this.paused = false;
    this.frozenAt = 0;
    this.selected = null;
    this.visible = []; // the vertices of the last frame, with their x and y
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
  }

  zoom(factor) {
    this.pxPerSecond = Math.min(400, Math.max(4, this.pxPerSecond * factor));
  }

  size() {
    const ratio = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight;
    if (this.canvas.width !== Math.round(w * ratio) || this.canvas.height !== Math.round(h * ratio)) {
      this.canvas.width = Math.round(w * ratio);
      this.canvas.height = Math.round(h * ratio);
    }
    this.ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return [w, h];
  }

  draw() {
    // One pass over the held vertices, no allocation per vertex: each visible vertex gets its
    // position and this frame's number; edges are drawn to parents drawn in the same frame.
    const [w, h] = this.size();
    const ctx = this.ctx;
    const now = this.paused ? this.frozenAt : Date.now();
    const right = w - MARGIN;
    const scale = this.pxPerSecond / 1000;
    const laneHeight = h - 2 * MARGIN;
    const frame = ++this.frameNumber;
    const store = this.store;
    const visible = this.visible;
    visible.length = 0;
    const oldest = now - (right + MARGIN) / scale;
    for (const v of store.vertices.values()) {
      if (v.seen < oldest) continue;
      const x = right - (now - v.seen) * scale;
      if (x > w + MARGIN) continue;
      v.x = x;
      v.y = MARGIN + (v.kind === "milestone" ? 0.5 : v.lane) * laneHeight;
      v.frame = frame;
      visible.push(v);
    }
    ctx.fillStyle = "#11141a";
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
    if (this.paused) {
      ctx.fillStyle = "rgba(255,255,255,0.8)";
      ctx.fillText("paused", 10, 16);
    }
    if (!this.paused && store.pendingPaint.length) {
      const painted = Date.now();
      for (const applied of store.pendingPaint) this.metrics.painted(painted - applied);
      store.pendingPaint.length = 0;
    }
  }

  click(event) {
    const rect = this.canvas.getBoundingClientRect();
    const px = event.clientX - rect.left, py = event.clientY - rect.top;
    let best = null, bestDistance = 12 * 12;
    for (const v of this.visible) {
      const d = (v.x - px) ** 2 + (v.y - py) ** 2;
      if (d < bestDistance) [best, bestDistance] = [v, d];
    }
    if (best) {
      this.selected = best;
      this.onOpen(best);
    }
  }

  key(event) {
    const ordered = this.visible.map((v) => [v.x, v]).sort((a, b) => a[0] - b[0]);
    const at = ordered.findIndex(([, v]) => v === this.selected);
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      if (!ordered.length) return;
      const step = event.key === "ArrowLeft" ? -1 : 1;
      const next = at < 0 ? ordered.length - 1 : Math.min(ordered.length - 1, Math.max(0, at + step));
      this.selected = ordered[next][1];
      this.onSelect && this.onSelect(this.selected);
    } else if (event.key === "Enter" && this.selected) {
      this.onOpen(this.selected);
    }
  }
}
