// sockmux dashboard: polls api/status once per interval and redraws the
// tables and each link's throughput chart. No framework, no build step.
"use strict";

const linksEl = document.getElementById("links");
const sharesEl = document.getElementById("shares");
const connEl = document.getElementById("conn");
const updatedEl = document.getElementById("updated");
const emptyEl = document.getElementById("empty");

// el builds an element; strings become text nodes (never HTML).
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids.flat()) {
    if (k === undefined || k === null || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
function fmtBytes(n) {
  n = Number(n) || 0;
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0)) + " " + units[i];
}
const fmtRate = (n) => fmtBytes(n) + "/s";
function fmtDur(ns) {
  ns = Number(ns) || 0;
  if (ns <= 0) return "—";
  if (ns < 1e3) return ns + " ns";
  if (ns < 1e6) return (ns / 1e3).toFixed(ns < 1e4 ? 1 : 0) + " µs";
  if (ns < 1e9) return (ns / 1e6).toFixed(ns < 1e7 ? 2 : 1) + " ms";
  return (ns / 1e9).toFixed(2) + " s";
}
function fmtAge(since, now) {
  if (!since) return "—";
  let s = Math.max(0, Math.round((now - Date.parse(since)) / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}
const pill = (cls, text) => el("span", { class: "pill " + cls }, text);
const stat = (label, value) => el("span", {}, label + " ", el("b", {}, value));

// Cards are kept by name so that a chart's canvas survives each update.
const linkCards = new Map();
const shareCards = new Map();

function linkCard(name) {
  let c = linkCards.get(name);
  if (c) return c;
  const canvas = el("canvas", { class: "chart", "data-link": name, "aria-label": "throughput of " + name, role: "img" });
  c = {
    root: el("article", { class: "card link", "data-link": name }),
    title: el("h2", {}),
    totals: el("div", { class: "totals" }),
    canvas,
    legend: el("div", { class: "legend" }),
    body: el("div", {}),
  };
  c.root.append(c.title, c.totals, el("div", { class: "chartbox" }, canvas, c.legend), c.body);
  linkCards.set(name, c);
  return c;
}

function shareCard(name) {
  let c = shareCards.get(name);
  if (!c) {
    c = { root: el("article", { class: "card share", "data-share": name }) };
    shareCards.set(name, c);
  }
  return c;
}

// place puts the cards in order in parent and drops the ones gone.
function place(parent, cards, names) {
  for (const [name, c] of cards) if (!names.includes(name)) { c.root.remove(); cards.delete(name); }
  names.forEach((name, i) => {
    const r = cards.get(name).root;
    if (parent.children[i] !== r) parent.insertBefore(r, parent.children[i] || null);
  });
}

const headTips = {
  "RTT": "a peer's: its last PING round trip; a carrier's: the least measured on it",
  "received": "sequenced frames that arrived on the carriers, headers included (striped links)",
  "sent": "sequenced frames put on the carriers, headers included (striped links)",
  "in flight": "sent on the carrier and not yet acknowledged by the peer",
};

function peerRows(p, now) {
  const state = p.up ? pill("up", "up") : p.resuming ? pill("warn", "resuming") : pill("down", "down");
  const cs = p.per_carrier || [];
  const sum = (f) => cs.reduce((a, c) => a + (Number(c[f]) || 0), 0);
  const rows = [el("tr", { class: "peer" },
    el("td", { class: "mono peer-addr" }, p.peer),
    el("td", {}, state, " ", el("span", { class: "muted" }, p.role + (p.authenticated ? ", authenticated" : ""))),
    el("td", { class: "num" }, fmtDur(p.rtt_ns)),
    el("td", { class: "num" }, p.streams_open),
    el("td", { class: "num" }, p.carriers),
    el("td", { class: "num" }, cs.length ? fmtBytes(sum("bytes_in")) : "—"),
    el("td", { class: "num" }, cs.length ? fmtBytes(sum("bytes_sent")) : "—"),
    el("td", { class: "num" }, cs.length ? fmtBytes(sum("in_flight")) : "—"),
    el("td", { class: "num" }, p.up ? fmtAge(p.since, now) : "—"))];
  cs.forEach((c, i) => rows.push(el("tr", { class: "carrier" },
    el("td", { class: "mono" }, `carrier ${i + 1} · ${c.local}`),
    el("td", {}, c.stalled ? pill("warn", "stalled") : pill("up", "delivering")),
    el("td", { class: "num" }, fmtDur(c.rtt_ns)),
    el("td", {}), el("td", {}),
    el("td", { class: "num" }, fmtBytes(c.bytes_in)),
    el("td", { class: "num" }, fmtBytes(c.bytes_sent)),
    el("td", { class: "num" }, fmtBytes(c.in_flight)),
    el("td", {}))));
  return rows;
}

// failover is "(n of m)" for a connect link with a failover list: which of
// its addresses it is on.
function failover(l) {
  const addrs = l.addrs || [];
  return addrs.length > 1 ? `(${addrs.indexOf(l.addr) + 1} of ${addrs.length})` : "";
}

function renderLink(l, hist, data, now) {
  const c = linkCard(l.name);
  const s = l.status || {};
  c.title.replaceChildren(el("span", { class: "name" }, l.name),
    el("span", { class: "kind mono" }, [l.mode, l.addr, failover(l)].filter(Boolean).join(" ")));
  const open = (s.streams_opened || 0) - (s.streams_closed || 0);
  c.totals.replaceChildren(
    stat("received", fmtBytes(s.bytes_in)), stat("sent", fmtBytes(s.bytes_out)),
    stat("streams open", `${open} of ${s.streams_opened || 0}`),
    stat("credit stalls", s.credit_stalls || 0), stat("carrier stalls", s.carrier_stalls || 0),
    stat("frames resent", s.frames_resent || 0), stat("reconnects", s.reconnects || 0),
    stat("resumes", s.resumes || 0), stat("refusals", s.refusals || 0),
    stat("dropped datagrams", s.dropped_datagrams || 0), stat("dial failures", s.dial_failures || 0));
  const last = hist.length ? hist[hist.length - 1] : [0, 0, 0];
  c.legend.replaceChildren(el("span", { class: "in" }, el("i"), "received ", el("b", { class: "rate-in" }, fmtRate(last[1]))),
    el("span", { class: "out" }, el("i"), "sent ", el("b", { class: "rate-out" }, fmtRate(last[2]))),
    el("span", { class: "muted" }, `last ${Math.round(data.samples * data.every_ms / 60000)} minutes, ` +
      (data.every_ms === 1000 ? "a point a second" : `a point every ${data.every_ms / 1000} s`)));
  drawChart(c.canvas, hist, data);

  const peers = s.links || [];
  const body = [el("h3", {}, `peers (${peers.length})`)];
  body.push(peers.length ? el("table", { class: "peers" },
    el("thead", {}, el("tr", {}, ["peer / carrier", "state", "RTT", "streams open", "carriers", "received", "sent", "in flight", "up for"]
      .map((h, i) => el("th", { class: i >= 2 ? "num" : "", title: headTips[h] }, h)))),
    el("tbody", {}, peers.flatMap((p) => peerRows(p, now)))) : el("p", { class: "empty" }, "no peer connected"));
  const fwd = s.forwards || [];
  if (fwd.length) {
    body.push(el("h3", {}, `forwards (${fwd.length})`), el("table", { class: "forwards" },
      el("thead", {}, el("tr", {}, el("th", {}, "listen"), el("th", { class: "num" }, "connections"))),
      el("tbody", {}, fwd.map((f) => el("tr", {}, el("td", { class: "mono" }, f.listen), el("td", { class: "num" }, f.connections))))));
  }
  c.body.replaceChildren(...body);
}

function renderShare(sh, now) {
  const c = shareCard(sh.name);
  const st = sh.stats || {};
  const clients = st.clients || [];
  c.root.replaceChildren(
    el("h2", {}, el("span", { class: "name" }, sh.name), el("span", { class: "kind mono" }, "share " + sh.listen)),
    el("div", { class: "totals" },
      el("span", {}, "upstream ", el("b", { class: "mono" }, st.upstream || "?"), " ", st.upstream_up ? pill("up", "up") : pill("down", "down")),
      stat("sessions", st.upstream_sessions || 0), stat("from upstream", fmtBytes(st.from_upstream)),
      stat("to upstream", fmtBytes(st.to_upstream)), stat("dropped", fmtBytes(st.dropped)),
      stat("slow disconnects", st.slow_disconnects || 0)),
    el("h3", {}, `clients (${clients.length})`),
    clients.length ? el("table", { class: "clients" },
      el("thead", {}, el("tr", {}, ["client", "joined", "from client", "to client", "dropped", "queued"].map((h, i) => el("th", { class: i >= 1 ? "num" : "" }, h)))),
      el("tbody", {}, clients.map((cl) => el("tr", {},
        el("td", { class: "mono" }, cl.addr), el("td", { class: "num" }, fmtAge(cl.joined, now) + " ago"),
        el("td", { class: "num" }, fmtBytes(cl.in)), el("td", { class: "num" }, fmtBytes(cl.out)),
        el("td", { class: "num" }, fmtBytes(cl.dropped)), el("td", { class: "num" }, fmtBytes(cl.queued))))))
      : el("p", { class: "empty" }, "no client connected"));
}

// niceCeil rounds a rate up to a round number of the largest binary unit
// below it (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten),
// so that the axis reads well.
function niceCeil(v) {
  if (v <= 0) return 1024;
  let unit = 1;
  while (v / unit >= 1024) unit *= 1024;
  const x = v / unit;
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (x <= m * p * (1 + 1e-9)) return m * p * unit;
  return 10 * p * unit;
}

// drawChart draws the last samples×every of hist ([ms, in, out]) on the
// canvas, now at the right edge, and records what it drew in data-*
// attributes (for people with tools, and for the tests).
function drawChart(cv, hist, data) {
  const dpr = window.devicePixelRatio || 1;
  const w = cv.clientWidth || 600, h = cv.clientHeight || 180;
  if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
    cv.width = Math.round(w * dpr);
    cv.height = Math.round(h * dpr);
  }
  const g = cv.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.documentElement);
  const colIn = css.getPropertyValue("--in").trim() || "#2563eb";
  const colOut = css.getPropertyValue("--out").trim() || "#e8590c";
  const L = 72, R = 10, T = 8, B = 22;
  const pw = w - L - R, ph = h - T - B;
  const now = Date.parse(data.time);
  const span = data.samples * data.every_ms;
  const t0 = now - span;
  const pts = hist.filter((p) => p[0] >= t0);
  const peak = pts.reduce((a, p) => Math.max(a, p[1], p[2]), 0);
  const top = niceCeil(peak * 1.1);
  const x = (t) => L + ((t - t0) / span) * pw;
  const y = (v) => T + ph - (v / top) * ph;

  g.font = "11px system-ui, sans-serif";
  g.lineWidth = 1;
  g.strokeStyle = "#e3e6eb";
  g.fillStyle = "#6b7280";
  g.textAlign = "right";
  g.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4, yy = Math.round(y(v)) + 0.5;
    g.beginPath(); g.moveTo(L, yy); g.lineTo(L + pw, yy); g.stroke();
    g.fillText(fmtRate(v), L - 6, yy);
  }
  g.textAlign = "center";
  g.textBaseline = "top";
  const minute = 60000;
  for (let t = now; t >= t0 - 1; t -= minute) {
    const xx = Math.round(x(t)) + 0.5;
    g.beginPath(); g.moveTo(xx, T); g.lineTo(xx, T + ph); g.stroke();
    const ago = Math.round((now - t) / minute);
    g.fillText(ago === 0 ? "now" : `−${ago} min`, Math.min(Math.max(xx, L + 16), L + pw - 14), T + ph + 5);
  }

  const gap = 2.5 * data.every_ms;
  const series = (idx, color, fill) => {
    if (!pts.length) return;
    g.strokeStyle = color;
    g.lineWidth = 1.75;
    g.lineJoin = "round";
    let run = [];
    const flush = () => {
      if (!run.length) return;
      if (fill) {
        g.beginPath();
        g.moveTo(x(run[0][0]), y(0));
        for (const p of run) g.lineTo(x(p[0]), y(p[idx]));
        g.lineTo(x(run[run.length - 1][0]), y(0));
        g.closePath();
        g.globalAlpha = 0.14; g.fillStyle = color; g.fill(); g.globalAlpha = 1;
      }
      g.beginPath();
      run.forEach((p, i) => (i ? g.lineTo(x(p[0]), y(p[idx])) : g.moveTo(x(p[0]), y(p[idx]))));
      if (run.length === 1) g.lineTo(x(run[0][0]) + 1, y(run[0][idx]));
      g.stroke();
      run = [];
    };
    pts.forEach((p, i) => {
      if (i && p[0] - pts[i - 1][0] > gap) flush();
      run.push(p);
    });
    flush();
  };
  series(1, colIn, true);
  series(2, colOut, false);
  if (!pts.length) {
    g.fillStyle = "#6b7280"; g.textAlign = "center"; g.textBaseline = "middle";
    g.fillText("collecting…", L + pw / 2, T + ph / 2);
  }

  const last = pts.length ? pts[pts.length - 1] : [0, 0, 0];
  cv.dataset.samples = String(pts.length);
  cv.dataset.lastTime = String(last[0]);
  cv.dataset.lastIn = String(last[1]);
  cv.dataset.lastOut = String(last[2]);
  cv.dataset.peak = String(peak);
  cv.dataset.scale = String(top);
}

function render(data) {
  const r = data.report || {};
  const now = Date.parse(data.time);
  const links = r.links || [], shares = r.shares || [];
  for (const l of links) renderLink(l, (data.history || {})[l.name] || [], data, now);
  place(linksEl, linkCards, links.map((l) => l.name));
  for (const sh of shares) renderShare(sh, now);
  place(sharesEl, shareCards, shares.map((s) => s.name));
  emptyEl.hidden = links.length + shares.length > 0;
  updatedEl.textContent = "updated " + new Date(now).toLocaleTimeString();
  document.body.dataset.updated = String(now);
}

let every = 1000;
let last = null;
async function poll() {
  try {
    const resp = await fetch("api/status", { cache: "no-store" });
    if (!resp.ok) throw new Error(resp.status + " " + resp.statusText);
    const data = await resp.json();
    every = data.every_ms || every;
    last = data;
    render(data);
    connEl.className = "pill up";
    connEl.dataset.state = "live";
    connEl.textContent = "live";
  } catch (err) {
    connEl.className = "pill down";
    connEl.dataset.state = "down";
    connEl.textContent = "no answer: " + err.message;
  }
  setTimeout(poll, every);
}
window.addEventListener("resize", () => {
  if (!last) return;
  for (const l of (last.report || {}).links || []) {
    const c = linkCards.get(l.name);
    if (c) drawChart(c.canvas, (last.history || {})[l.name] || [], last);
  }
});
poll();
