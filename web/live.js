// metaplast live view (docs/live.md): the snapshot first, then the updates as server-sent events.
// Read-only but for the stop button. Every plot has units on its axes.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const withToken = (path) => path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
const $ = (id) => document.getElementById(id);
// Text from files and runs (step ids, folders, messages) goes into the page as text, never HTML.
const esc = (v) => String(v).replace(
    /[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\'': '&#39;'})[c]);

const state = { epochs: [], steps: [], seq: 0, plots: {}, pending: new Map(), timer: null };

// Drawing waits for a quiet moment: at most 1 redraw a second, however fast updates come (a
// browser on the run's machine then costs the run little; docs/live.md).
function schedule(key, draw) {
  state.pending.set(key, draw);
  if (state.timer === null) {
    state.timer = setTimeout(() => {
      state.timer = null;
      const draws = [...state.pending.values()];
      state.pending.clear();
      draws.forEach((d) => d());
    }, 1000);
  }
}

// One uPlot per panel, rebuilt when its series change shape. options: xLog, yLog (log axes),
// xInt (whole-number ticks: epochs), points (draw each point), spanGaps (join across nulls),
// groups (colour index per series), dashed (per series: a fitted model).
function plot(id, title, xLabel, yLabel, data, labels, options = {}) {
  const el = $(id);
  const colours = [
    '#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf',
    '#bcbd22', '#000000'
  ];
  const series = [{label: xLabel}].concat(
      labels.map((label, i) => ({
                   label,
                   stroke: colours[(options.groups ? options.groups[i] : i) % colours.length],
                   width: options.dashed && options.dashed[i] ? 1 : 2,
                   dash: options.dashed && options.dashed[i] ? [6, 4] : undefined,
                   spanGaps: options.spanGaps === true,
                   points: {show: options.points !== false && data[0].length < 60}
                 })));
  const spec = JSON.stringify([xLabel, yLabel, labels, options, data[0].length < 60]);
  let p = state.plots[id];
  if (!p || p.spec !== spec) {
    if (p) p.plot.destroy();
    const xAxis = { label: xLabel };
    if (options.xInt) xAxis.incrs = [1, 2, 5, 10, 20, 50, 100];
    const opts = {
      width: el.clientWidth || 480, height: 240, series,
      scales: { x: { time: false, distr: options.xLog ? 3 : 1 }, y: { distr: options.yLog ? 3 : 1 } },
      axes: [xAxis, { label: yLabel, size: 64 }],
    };
    p = state.plots[id] = { plot: new uPlot(opts, data, el), spec };
  } else {
    p.plot.setData(data);
  }
  el.dataset.points = String(data[0].length);
}

// A measurement's plot (docs/live.md, "plot"): every series has its own x (a CDF per level, a
// curve per level with its fit), put on the union of the x values, gaps spanned.
function drawMeasurement(body) {
  $('measurement-panel').hidden = false;
  $('measurement-title').textContent = body.title;
  const series = body.series.filter((s) => s.x.length > 0);
  if (series.length === 0) return;
  const xs = [...new Set(series.flatMap((s) => s.x))].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  const ys = series.map((s) => {
    const y = new Array(xs.length).fill(null);
    s.x.forEach((x, i) => {
      y[at.get(x)] = s.y[i];
    });
    return y;
  });
  plot(
      'measurement-plot', body.title, body.x_label, body.y_label, [xs, ...ys],
      series.map((s) => s.label), {
        xLog: body.x_log,
        yLog: body.y_log,
        spanGaps: true,
        groups: series.map((s) => s.group),
        dashed: series.map((s) => s.fit)
      });
}

// A step's folder as a link to its files (served by metaplast: GET /files/...).
function stepLink(dir) {
  if (!dir) return '';
  const href = withToken('/files/' + dir + '/');  // the server serves plain names only
  return `<a href="${esc(href)}" target="_blank">${esc(dir)}</a>`;
}

function drawAccuracy() {
  const tasks = [...new Set(state.epochs.flatMap((e) => e.evaluations.filter((v) => v.split === "test").map((v) => v.task)))];
  const x = state.epochs.map((e) => e.epoch_index);
  const ys = tasks.map((t) => state.epochs.map((e) => {
    const v = e.evaluations.find((v) => v.task === t && v.split === "test");
    return v ? 100 * v.accuracy : null;
  }));
  plot("accuracy-plot", "accuracy", "epoch (over the run)", "test accuracy (%)", [x, ...ys], tasks, { xInt: true });
}

function drawLoss() {
  const x = state.steps.map((s) => s.step);
  plot("loss-plot", "loss", "training step (this session)", "loss (nats, batch mean)", [x, state.steps.map((s) => s.loss)], ["batch loss"], { points: false });
}

function drawWrites(w) {
  const per = w.per_epoch || [], first = w.first_epoch_index || 1;
  plot("writes-plot", "writes", "epoch (over the run)", "pulses (SET + RESET)", [per.map((_, i) => first + i), per], ["pulses in the epoch"], { xInt: true });
  if (w.histogram) {
    // Log axis: an empty bin has no point.
    const devices = w.histogram.devices.map((n) => (n > 0 ? n : null));
    plot("histogram-plot", "histogram", `programming pulses per device (bins of ${w.histogram.bin_width})`, "devices", [w.histogram.pulses, devices], ["devices"], { yLog: true });
  }
}

// The 128 x 128 map: viridis-like colours on a log scale of uS, with its colour bar.
function colour(t) {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const s = Math.min(Math.max(t, 0), 1) * (stops.length - 1), i = Math.min(Math.floor(s), stops.length - 2), f = s - i;
  return stops[i].map((c, k) => Math.round(c + f * (stops[i + 1][k] - c)));
}
function drawMap(m) {
  const canvas = $("map"), ctx = canvas.getContext("2d");
  const values = m.conductance_us.filter((v) => v !== null && v > 0);
  if (!values.length) return;
  const lo = Math.log10(Math.max(0.1, Math.min(...values))), hi = Math.log10(Math.max(...values));
  const image = ctx.createImageData(m.cols, m.rows);
  m.conductance_us.forEach((v, i) => {
    const [r, g, b] = v === null ? [200, 200, 200] : colour((Math.log10(Math.max(v, 0.1)) - lo) / (hi - lo || 1));
    image.data.set([r, g, b, 255], 4 * i);
  });
  const off = document.createElement("canvas");
  off.width = m.cols; off.height = m.rows;
  off.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
  const bar = $("colour-bar"), bctx = bar.getContext("2d");
  bctx.clearRect(0, 0, bar.width, bar.height);
  for (let y = 0; y < bar.height - 20; y++) {
    const [r, g, b] = colour(1 - y / (bar.height - 20));
    bctx.fillStyle = `rgb(${r},${g},${b})`;
    bctx.fillRect(0, y + 10, 14, 1);
  }
  bctx.fillStyle = "#222"; bctx.font = "11px sans-serif";
  bctx.fillText(Math.pow(10, hi).toFixed(1), 17, 14);
  bctx.fillText(Math.pow(10, lo).toFixed(1), 17, bar.height - 8);
  bctx.fillText("µS", 17, bar.height / 2);
  bar.dataset.unit = "µS";
  $("map-caption").textContent = (m.caption || "") + " (grey: no weight placed)";
  canvas.dataset.points = String(values.length);
}

function table(id, rows) {
  $(id).innerHTML = rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('');
}

function showStatus(s) {
  const el = $("status");
  el.className = "status " + s.state;
  const what = { running: "running", finished: "finished", failed: "FAILED", interrupted: "interrupted", stopped: "stopped (resumable)" }[s.state] || s.state;
  el.textContent = what + (s.exit_status !== undefined && s.state !== "running" ? ` (exit status ${s.exit_status})` : "") + (s.message ? ": " + s.message : "");
  $("stop").disabled = s.state !== "running";
  document.body.dataset.state = s.state;
}
// A training's panels for a training (train, or a view of its folder); a measurement, a
// characterisation and a campaign show their own (the plot, the steps) and the link.
function showPanelsOf(command) {
  const training = command.includes('train');
  for (const id of ['accuracy-panel', 'loss-panel', 'writes-panel', 'histogram-panel', 'map-panel']) {
    $(id).hidden = !training;
  }
  $('board-panel').hidden = command.includes('campaign');
}

const finalStates = new Set(["finished", "failed", "interrupted", "stopped"]);

function apply(kind, body) {
  switch (kind) {
    case 'run':
      $('run-kind').textContent = body.command || 'live';
      $('run-where').textContent = body.out_dir || '';
      document.title = `metaplast ${body.command || 'live'}: ${body.out_dir || ''}`;
      $('stop').hidden = body.stoppable === false;
      showPanelsOf(String(body.command || ''));
      break;
    case "progress": schedule("progress", () => {
      $("progress-bar").style.width = (100 * body.fraction).toFixed(1) + "%";
      const eta = body.eta_s === undefined ? "" : ` — ETA ${Math.round(body.eta_s)} s`;
      $("progress-text").textContent = `${body.what || ""} ${(100 * body.fraction).toFixed(1)} %${eta}`;
    }); break;
    case "status": showStatus(body); break;
    case "epoch": state.epochs.push(body); schedule("accuracy", drawAccuracy); break;
    case "step": state.steps.push(body); if (state.steps.length > 5000) state.steps.shift(); schedule("loss", drawLoss); break;
    case "writes": schedule("writes", () => drawWrites(body)); break;
    case "board_map": schedule("map", () => drawMap(body)); break;
    case "verify": table("verify", [["cells programmed", body.cells], ["pulses per cell (mean)", body.pulses_mean.toFixed(2)], ["pulses per cell (max)", body.pulses_max], ["cells given up", body.given_up]]); break;
    case "link": table("link", [["resends", body.resends], ["CRC errors", body.bad_crc_nacks + body.corrupt_replies], ["reconnects", body.reconnects], ["reboots detected", body.reboots], ["reconciliations", body.reconciliations]]); break;
    case "campaign":
      $("campaign-panel").hidden = false;
      $('steps').innerHTML =
          '<tr><th>step</th><th>type</th><th>state</th><th>results in</th></tr>' +
          body.steps
              .map(
                  (s) => `<tr class="${esc(s.status)}"><td>${esc(s.id)}</td><td>${
                      esc(s.type)}</td><td>${esc(s.status)}</td><td>${stepLink(s.dir)}</td></tr>`)
              .join('');
      break;
    case "plot":
      schedule('plot', () => drawMeasurement(body));
      break;
  }
}

async function start() {
  const snapshot = await (await fetch(withToken("/api/snapshot"))).json();
  state.seq = snapshot.seq;
  state.epochs = []; state.steps = [];
  for (const [kind, bodies] of Object.entries(snapshot.series)) bodies.forEach((b) => apply(kind, b));
  for (const [kind, body] of Object.entries(snapshot.state)) apply(kind, body);
  const events = new EventSource(withToken("/api/events?since=" + state.seq));
  for (const kind of ["run", "progress", "status", "epoch", "step", "writes", "board_map", "verify", "link", "campaign", "plot"]) {
    events.addEventListener(kind, (e) => {
      state.seq = Number(e.lastEventId);
      const body = JSON.parse(e.data);
      apply(kind, body);
      if (kind === "status" && finalStates.has(body.state)) events.close();  // nothing more comes
    });
  }
  events.addEventListener("resync", () => { events.close(); start(); });
  events.onerror = () => { if ($("status").classList.contains("running")) $("status").textContent = "connection lost; retrying..."; };
  if (finalStates.has(document.body.dataset.state)) events.close();
}

$("stop").addEventListener("click", async () => {
  const r = await fetch(withToken("/api/stop"), { method: "POST" });
  $("stop").textContent = r.status === 202 ? "stopping after this epoch/step..." : `refused (${r.status})`;
  $("stop").disabled = true;
});

start();
