// Small canvas charts of per-second series: one line, its latest value and its peak in words.

export class Chart {
  constructor(canvas, { label, unit, colour, format }) {
    this.canvas = canvas;
    this.label = label;
    this.unit = unit;
    this.colour = colour;
    this.format = format || ((v) => String(Math.round(v)));
    canvas.setAttribute("role", "img");
  }

  draw(points) {
    const ratio = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight;
    if (this.canvas.width !== Math.round(w * ratio)) this.canvas.width = Math.round(w * ratio);
    if (this.canvas.height !== Math.round(h * ratio)) this.canvas.height = Math.round(h * ratio);
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const values = points.filter((v) => v !== null);
    const peak = Math.max(1, ...values);
    const top = 18, bottom = h - 4;
    ctx.strokeStyle = "rgba(150,160,180,0.25)";
    ctx.beginPath();
    ctx.moveTo(0, bottom);
    ctx.lineTo(w, bottom);
    ctx.stroke();
    ctx.strokeStyle = this.colour;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let drawing = false;
    points.forEach((v, i) => {
      if (v === null) {
        drawing = false;
        return;
      }
      const x = (i / Math.max(1, points.length - 1)) * w;
      const y = bottom - (v / peak) * (bottom - top);
      if (drawing) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      drawing = true;
    });
    ctx.stroke();
    const recent = values.slice(-5);
    const last = recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : null;
    const text = values.length
      ? `${this.label}: ${last === null ? "–" : this.format(last)} ${this.unit} (peak ${this.format(peak)})`
      : `${this.label}: no data yet`;
    ctx.fillStyle = "#c9d1dc";
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillText(text, 4, 13);
    this.canvas.setAttribute("aria-label", text + ": the last 5 s on average; the line shows 60 s");
  }
}
