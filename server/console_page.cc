// The web console's page: plain HTML and JavaScript, served by the node
// (nothing fetched from elsewhere). It speaks the HTTP API: /status,
// /nodes, /db/query, /db/request, and /console/approval.
#include "server/console.h"

namespace raftsql::server {

const char kConsolePage[] = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>raftsql console</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 0; color: #222; }
header { background: #1d3557; color: #fff; padding: 8px 16px; }
header a { color: #fff; margin-right: 16px; text-decoration: none; }
header a.on { border-bottom: 2px solid #fff; }
main { padding: 12px 16px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
th { background: #eef; }
textarea { width: 100%; height: 90px; font: 13px monospace; }
.error { color: #b00020; white-space: pre-wrap; }
.muted { color: #777; }
svg.spark { vertical-align: middle; }
button { margin: 2px; }
</style>
</head>
<body>
<header>
  <b>raftsql</b>&nbsp;&nbsp;
  <a href="#cluster" id="nav-cluster">Cluster</a>
  <a href="#query" id="nav-query">Query</a>
  <a href="#devices" id="nav-devices">Devices</a>
  <a href="#decisions" id="nav-decisions">Decisions</a>
</header>
<main id="view"></main>
<script>
"use strict";
// Pages are built off the document, then swapped in whole: a refresh never
// shows half a page.
let main = document.createElement("div");
let refresh = null;

async function api(path, options) {
  const r = await fetch(path, Object.assign({credentials: "same-origin"},
                                            options || {}));
  const text = await r.text();
  let body;
  try { body = JSON.parse(text); } catch (e) { body = {error: text}; }
  if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
  return body;
}

// One statement's result: {columns, types, values} or an error.
async function query(sql, params) {
  const statement = params ? [sql].concat(params) : [sql];
  const body = await api("/db/query?level=weak", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify([statement])});
  const result = body.results[0];
  if (result.error) throw new Error(result.error);
  return result;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) {
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function cell(v) {
  return v === null ? el("span", {class: "muted"}, "NULL") : String(v);
}

// A result as a table; `extra(row)` may add a last cell.
function table(result, id, extra) {
  const t = el("table", {id: id || ""});
  const head = el("tr");
  for (const c of result.columns || []) head.append(el("th", {}, c));
  if (extra) head.append(el("th"));
  t.append(head);
  for (const row of result.values || []) {
    const tr = el("tr");
    for (const v of row) tr.append(el("td", {}, cell(v)));
    if (extra) tr.append(el("td", {}, extra(row)));
    t.append(tr);
  }
  return t;
}

function failed(where, e) {
  where.append(el("p", {class: "error"}, e.message));
}

async function clusterPage() {
  const status = await api("/status");
  const raft = status.store.raft;
  main.append(el("h2", {}, "Cluster"),
    el("p", {id: "this-node"}, "This node: " + status.store.node_id + ", " +
       raft.state + ", term " + raft.term + ", commit " + raft.commit_index +
       ", applied " + raft.applied_index + ", hash " +
       status.store.divergence_hash));
  const nodes = await api("/nodes?nonvoters&ver=2");
  const result = {columns: ["id", "role", "voter", "reachable", "api",
                            "raft address", "answered in"], values: []};
  for (const n of nodes.nodes) {
    result.values.push([n.id, n.leader ? "leader" : "follower",
                        n.voter ? "yes" : "no", n.reachable ? "yes" : "NO",
                        n.api_addr, n.addr, (n.time * 1000).toFixed(1) + " ms"]);
  }
  main.append(table(result, "nodes"));
}

async function queryPage(params) {
  const box = el("textarea", {id: "sql"});
  box.value = params.get("q") || "SELECT name, type FROM sqlite_schema";
  const out = el("div", {id: "result"});
  const run = async () => {
    out.replaceChildren();
    try {
      const body = await api("/db/request?timings", {
        method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify([box.value])});
      const r = body.results[0];
      if (r.error) throw new Error(r.error);
      if (r.columns) {
        out.append(table(r, "rows"),
                   el("p", {class: "muted"}, (r.values || []).length +
                      " rows in " + (body.time * 1000).toFixed(1) + " ms"));
      } else {
        out.append(el("p", {id: "affected"}, (r.rows_affected || 0) +
                      " rows affected"));
      }
    } catch (e) { failed(out, e); }
  };
  const button = el("button", {id: "run"}, "Run");
  button.onclick = run;
  main.append(el("h2", {}, "Query"), box, button, out);
  if (params.get("q")) await run();
}

// The last readings of a device's stream as a line.
function sparkline(values) {
  const w = 160, h = 30;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  if (values.length < 2) return svg;
  const lo = Math.min(...values), hi = Math.max(...values);
  const points = values.map((v, i) => (i * w / (values.length - 1)).toFixed(1) +
      "," + (h - 2 - (hi > lo ? (v - lo) / (hi - lo) : 0.5) * (h - 4)).toFixed(1));
  const line = document.createElementNS("http://www.w3.org/2000/svg",
                                        "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#1d3557");
  svg.append(line);
  return svg;
}

async function devicesPage() {
  main.append(el("h2", {}, "Devices"));
  const devices = await query(
      "SELECT device, connected, node, datetime(last_seen_ms / 1000, " +
      "'unixepoch') AS last_seen, acked, backlog, dropped, open_commands, " +
      "twin_delta FROM edge_device_status ORDER BY device");
  const readings = {};
  for (const row of devices.values || []) {
    // Its latest 100 readings, oldest first.
    const r = await query(
        "SELECT value FROM (SELECT value, hub_time_ms, seq FROM " +
        "edge_readings_by_device WHERE device = ? ORDER BY hub_time_ms " +
        "DESC, seq DESC LIMIT 100) ORDER BY hub_time_ms, seq", [row[0]]);
    readings[row[0]] = (r.values || []).map(v => v[0]);
  }
  main.append(table(devices, "devices",
                    row => sparkline(readings[row[0]] || [])));
  main.append(el("h3", {}, "Commands"), table(await query(
      "SELECT id, device, name, params, status, attempts, detail FROM " +
      "edge_commands ORDER BY seq DESC LIMIT 50"), "commands"));
  main.append(el("h3", {}, "Twin deltas"), table(await query(
      "SELECT * FROM edge_twin_delta"), "twins"));
}

async function decisionsPage() {
  main.append(el("h2", {}, "Decisions"), el("h3", {}, "Waiting for an operator"));
  const approvals = await query(
      "SELECT command_id, rule, device, command, params, status FROM " +
      "ai_approvals ORDER BY requested_ms DESC LIMIT 50");
  const answer = (id, approve) => async () => {
    try {
      await api("/console/approval", {
        method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({command_id: id, approve: approve})});
      await show();
    } catch (e) {
      failed(document.getElementById("view"), e);
    }
  };
  main.append(table(approvals, "approvals", row => {
    if (row[5] !== "pending") return "";
    const yes = el("button", {class: "approve", "data-id": row[0]}, "Approve");
    const no = el("button", {class: "refuse", "data-id": row[0]}, "Refuse");
    yes.onclick = answer(row[0], true);
    no.onclick = answer(row[0], false);
    return el("span", {}, yes, no);
  }));
  main.append(el("h3", {}, "Audit"), table(await query(
      "SELECT at_index, datetime(at_ms / 1000, 'unixepoch') AS at, rule, " +
      "device, verdict, command_id, guard, score FROM ai_audit ORDER BY " +
      "at_ms DESC, at_index DESC LIMIT 50"), "audit"));
}

async function show() {
  const [page, rest] = (location.hash.slice(1) || "cluster").split("?");
  const params = new URLSearchParams(rest || "");
  for (const a of document.querySelectorAll("header a")) {
    a.className = a.id === "nav-" + page ? "on" : "";
  }
  clearTimeout(refresh);
  main = document.createElement("div");
  const pages = {cluster: clusterPage, query: queryPage,
                 devices: devicesPage, decisions: decisionsPage};
  try {
    await (pages[page] || clusterPage)(params);
  } catch (e) { failed(main, e); }
  document.getElementById("view").replaceChildren(main);
  document.body.setAttribute("data-ready", page);
  // Live pages: the cluster's state and the devices' readings, every 2 s.
  if (page === "cluster" || page === "devices") {
    refresh = setTimeout(show, 2000);
  }
}
window.addEventListener("hashchange", show);
show();
</script>
</body>
</html>
)html";

}  // namespace raftsql::server
