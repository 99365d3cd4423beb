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
    this.visible = []; // [x, y, vertex] of the last frame
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
    const [w, h] = this.size();
    const ctx = this.ctx;
    const now = this.paused ? this.frozenAt : Date.now();
    const right = w - MARGIN;
    const scale = this.pxPerSecond / 1000;
    const laneHeight = h - 2 * MARGIN;
    const store = this.store;
    const positions = new Map();
    const visible = [];
    const byState = { pending: [], solid: [], referenced: [], included: [], conflicting: [] };
    const milestones = [];
    const latestCone = store.milestones.length ? store.milestones[store.milestones.length - 1].index : -1;
    const ringed = [];
    for (const v of store.vertices.values()) {
      const x = right - (now - v.seen) * scale;
      if (x < -MARGIN || x > w + MARGIN) continue;
      const y = MARGIN + (v.kind === "milestone" ? 0.5 : v.lane) * laneHeight;
      positions.set(v.id, [x, y]);
      visible.push([x, y, v]);
      if (v.kind === "milestone") milestones.push([x, y, v]);
      else byState[v.state].push(x, y);
      if (v.cone === latestCone) ringed.push(x, y);
    }
    ctx.fillStyle = "#11141a";
    ctx.fillRect(0, 0, w, h);
    ctx.lineWidth = 1;
    ctx.strokeStyle = "rgba(150,160,180,0.22)";
    ctx.beginPath();
    for (const [x, y, v] of visible) {
      for (const p of v.parents) {
        const to = positions.get(p);
        if (to) {
          ctx.moveTo(x, y);
          ctx.lineTo(to[0], to[1]);
        }
      }
    }
    ctx.stroke();
    if (ringed.length) {
      ctx.fillStyle = "rgba(245,185,66,0.25)";
      for (let i = 0; i < ringed.length; i += 2) ctx.fillRect(ringed[i] - 5, ringed[i + 1] - 5, 10, 10);
    }
    for (const [state, xy] of Object.entries(byState)) {
      ctx.fillStyle = COLOURS[state];
      for (let i = 0; i < xy.length; i += 2) ctx.fillRect(xy[i] - 2.5, xy[i + 1] - 2.5, 5, 5);
    }
    ctx.fillStyle = COLOURS.milestone;
    ctx.font = "11px system-ui, sans-serif";
    for (const [x, y, v] of milestones) {
      ctx.beginPath();
      ctx.arc(x, y, 7, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillText("#" + v.index, x - 10, v.index % 2 ? y - 11 : y + 20);
    }
    if (this.selected && positions.has(this.selected.id)) {
      const [x, y] = positions.get(this.selected.id);
      ctx.strokeStyle = "#ffffff";
      ctx.lineWidth = 2;
      ctx.strokeRect(x - 6, y - 6, 12, 12);
    }
    this.visible = visible;
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
    for (const [x, y, v] of this.visible) {
      const d = (x - px) ** 2 + (y - py) ** 2;
      if (d < bestDistance) [best, bestDistance] = [v, d];
    }
    if (best) {
      this.selected = best;
      this.onOpen(best);
    }
  }

  key(event) {
    const ordered = this.visible.map(([x, , v]) => [x, v]).sort((a, b) => a[0] - b[0]);
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
