// The node's event stream (GET /api/v1/events?live=true) and what the pages keep of it: the
// recent DAG (capped), the states of its messages, per-second rates and confirmation latencies.

export const STATES = ["pending", "solid", "referenced", "included", "conflicting"];
const SERIES_SECONDS = 120;

export class LiveStore {
  constructor({ cap = 5000 } = {}) {
    this.cap = cap;
    this.vertices = new Map(); // id -> {id, parents, kind, index, at, lane, state, cone}
    this.order = [];
    this.head = 0;
    this.milestones = []; // newest last: milestone events
    this.series = new Map(); // second -> {messages, confirmed, latencies: []}
    this.listeners = new Set();
    this.connected = false;
    this.lastEventAt = 0;
    this.counts = { messages: 0, milestones: 0, refused: 0 };
    this.pendingPaint = []; // applied_at_ms of milestone events not drawn yet
    this.uncounted = new Map(); // milestone message id -> its event, while the message is unseen
  }

  on(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(kind, data) {
    for (const listener of this.listeners) listener(kind, data);
  }

  bucket(ms) {
    const second = Math.floor(ms / 1000);
    let b = this.series.get(second);
    if (!b) {
      b = { messages: 0, confirmed: 0, latencies: [] };
      this.series.set(second, b);
      for (const key of this.series.keys()) {
        if (key > second - SERIES_SECONDS) break;
        this.series.delete(key);
      }
    }
    return b;
  }

  addMessages(data) {
    const now = Date.now();
    for (const m of data.messages) {
      if (this.vertices.has(m.id)) continue;
      const lane = parseInt(m.id.slice(0, 6), 16) / 0xffffff;
      this.vertices.set(m.id, { ...m, at: data.at_ms, seen: now, lane, state: "pending", cone: 0 });
      this.order.push(m.id);
    }
    for (const id of data.solid) {
      const v = this.vertices.get(id);
      if (v && v.state === "pending") v.state = "solid";
    }
    for (const m of data.messages) {
      const milestone = this.uncounted.get(m.id);
      if (milestone) {
        this.uncounted.delete(m.id);
        this.walkCone(milestone);
      }
    }
    this.counts.messages += data.messages.length;
    this.counts.refused += data.refused.length;
    this.bucket(data.at_ms).messages += data.messages.length;
    while (this.order.length - this.head > this.cap) this.vertices.delete(this.order[this.head++]);
    if (this.head > 4096) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }

  /** Start from what the node holds (GET /api/v1/explorer/recent and /milestones), older than
   *  anything the stream has brought. */
  prime(recent, milestones) {
    const offset = Date.now() - recent.now_ms;
    const older = [];
    for (const m of recent.messages) {
      if (this.vertices.has(m.id)) continue;
      const lane = parseInt(m.id.slice(0, 6), 16) / 0xffffff;
      this.vertices.set(m.id, { ...m, at: m.at_ms, seen: m.at_ms + offset, lane, cone: m.referenced_by || 0 });
      older.push(m.id);
      this.bucket(m.at_ms).messages += 1;
    }
    this.order = [...older, ...this.order.slice(this.head)];
    this.head = 0;
    while (this.order.length - this.head > this.cap) this.vertices.delete(this.order[this.head++]);
    const known = new Set(this.milestones.map((m) => m.index));
    const earlier = milestones.milestones
      .filter((m) => m.cone && !known.has(m.index))
      .map((m) => ({ index: m.index, message_id: m.message_id, applied_at_ms: m.cone.applied_at_ms, ...m.cone }))
      .reverse();
    for (const m of earlier) this.bucket(m.applied_at_ms).confirmed += m.included;
    this.milestones = [...earlier, ...this.milestones];
    this.emit("primed", null);
  }

  addTransaction(data) {
    const v = this.vertices.get(data.message_id);
    if (v) {
      v.state = data.inclusion === "included" ? "included" : "conflicting";
      v.conflict = data.conflict;
    }
  }

  addMilestone(data) {
    // The stream may bring the milestone before the message that carries it: its cone is
    // walked once that arrives.
    if (this.vertices.has(data.message_id)) this.walkCone(data);
    else {
      this.uncounted.set(data.message_id, data);
      if (this.uncounted.size > 64) this.uncounted.delete(this.uncounted.keys().next().value);
    }
    this.bucket(data.applied_at_ms).confirmed += data.included;
    this.milestones.push(data);
    if (this.milestones.length > 200) this.milestones.shift();
    this.counts.milestones += 1;
    this.pendingPaint.push(data.applied_at_ms);
  }

  walkCone(data) {
    // The milestone's cone: everything it newly references, walked back through the parents
    // this view holds, stopping at what an earlier milestone referenced.
    const start = this.vertices.get(data.message_id);
    const latencies = this.bucket(data.applied_at_ms).latencies;
    const stack = [start];
    while (stack.length) {
      const v = stack.pop();
      if (v.cone) continue;
      v.cone = data.index;
      if (v.state === "pending" || v.state === "solid") v.state = "referenced";
      if (v.kind === "transaction" && v.state === "included") latencies.push(data.applied_at_ms - v.at);
      for (const p of v.parents) {
        const parent = this.vertices.get(p);
        if (parent && !parent.cone) stack.push(parent);
      }
    }
  }

  /** Rates per whole second over the last `seconds`: [{t, messages, confirmed, latency}]. */
  rates(seconds = 60) {
    const now = Math.floor(Date.now() / 1000) - 1;
    const out = [];
    for (let t = now - seconds + 1; t <= now; t++) {
      const b = this.series.get(t);
      const lat = b && b.latencies.length ? median(b.latencies) : null;
      out.push({ t, messages: b ? b.messages : 0, confirmed: b ? b.confirmed : 0, latency: lat });
    }
    return out;
  }

  connect() {
    const source = new EventSource("/api/v1/events?live=true");
    const handle = (kind, apply) =>
      source.addEventListener(kind, (event) => {
        const data = JSON.parse(event.data);
        this.lastEventAt = Date.now();
        if (apply) apply.call(this, data);
        this.emit(kind, data);
      });
    handle("messages", this.addMessages);
    handle("transaction", this.addTransaction);
    handle("milestone", this.addMilestone);
    handle("reset", null);
    handle("dropped", null);
    source.onopen = () => {
      this.connected = true;
      this.emit("status", true);
    };
    source.onerror = () => {
      this.connected = false;
      this.emit("status", false);
    };
    this.source = source;
  }
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
