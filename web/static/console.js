// The operator console: a thin client of the REST API (no server-side rendering, no hidden endpoints).
const state = { page: 1, perPage: 20, status: "", selected: null, total: 0 };
const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const when = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "");
const duration = (a, b) => {
  if (!a || !b) return "";
  const s = (new Date(b) - new Date(a)) / 1000;
  return s < 120 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`;
};

async function api(path, options = {}) {
  const response = await fetch(path, { headers: { "content-type": "application/json" }, ...options });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

async function loadIncidents() {
  const params = new URLSearchParams({ page: state.page, per_page: state.perPage });
  if (state.status) params.set("status", state.status);
  const data = await api(`/api/v1/incidents?${params}`);
  state.total = data.total;
  const rows = data.items.map((i) => `
    <tr data-id="${i.id}" class="${i.id === state.selected ? "selected" : ""}">
      <td>${i.id}</td><td>${esc(i.title)}</td><td class="sev-${esc(i.severity)}">${esc(i.severity)}</td>
      <td class="status status-${esc(i.status)}">${esc(i.status)}</td><td>${esc(i.root_cause || "")}</td>
      <td>${when(i.opened_at)}</td><td>${duration(i.opened_at, i.resolved_at)}</td>
    </tr>`).join("");
  $("#incident-table tbody").innerHTML = rows ||
    `<tr><td colspan="7" class="empty">No incidents yet. Alerts POSTed to <code>/api/v1/alerts</code> (Alertmanager, CloudWatch/SNS or JSON) open incidents here.</td></tr>`;
  drawChart(data.items);
  const pages = Math.max(1, Math.ceil(data.total / state.perPage));
  $("#page-info").textContent = `page ${state.page} of ${pages} (${data.total} incidents)`;
  $("#prev").disabled = state.page <= 1;
  $("#next").disabled = state.page >= pages;
}

// time to resolve of the incidents on this page, oldest left: where a person would rather look than read
function drawChart(items) {
  const done = items.filter((i) => i.resolved_at).reverse();
  const svg = $("#ttr-chart");
  if (!done.length) { svg.innerHTML = `<text x="4" y="30" fill="#8a99a8">time to resolve appears here once incidents resolve</text>`; return; }
  const secs = done.map((i) => (new Date(i.resolved_at) - new Date(i.opened_at)) / 1000);
  const max = Math.max(...secs, 1), w = 600 / Math.max(done.length, 10);
  svg.innerHTML = secs.map((s, k) => `<rect x="${k * w + 2}" y="${54 - (s / max) * 38}" width="${w - 4}" height="${(s / max) * 38}" fill="#58a6ff"><title>#${done[k].id}: ${s.toFixed(1)} s</title></rect>`).join("")
    + `<text x="4" y="10" fill="#8a99a8" font-size="10">time to resolve (max ${max.toFixed(1)} s, mean ${(secs.reduce((a, b) => a + b, 0) / secs.length).toFixed(1)} s)</text>`;
}

async function loadDetail(id) {
  const d = await api(`/api/v1/incidents/${id}`);
  const pending = d.approvals.filter((a) => a.status === "pending");
  const maxConf = Math.max(0.01, ...d.hypotheses.map((h) => h.confidence));
  $("#detail").innerHTML = `
    <h2>#${d.id} ${esc(d.title)}</h2>
    <p>Status <b class="status status-${esc(d.status)}">${esc(d.status)}</b> · severity ${esc(d.severity)}
       ${d.root_cause ? `· root cause <b>${esc(d.root_cause)}</b>` : ""} ${d.mitigation ? `· mitigated by <b>${esc(d.mitigation)}</b>` : ""}</p>
    ${pending.map((a) => `
      <div class="approval" data-approval="${a.id}">
        Approval needed: <b>${esc(a.action)}</b> on ${esc(a.target)} (risk ${esc(a.risk)}; ${esc(a.reason)})
        <button class="approve" data-decide="${a.id}" data-ok="1">Approve</button>
        <button class="reject" data-decide="${a.id}" data-ok="0">Reject</button>
      </div>`).join("")}
    <h3>Hypotheses</h3>
    ${d.hypotheses.length ? `<table>${d.hypotheses.map((h) => `<tr><td>${esc(h.root_cause)}</td>
      <td><span class="bar" style="width:${Math.round((h.confidence / maxConf) * 120)}px"></span> ${h.confidence.toFixed(2)}</td>
      <td>${esc(h.evidence.join(", "))}</td></tr>`).join("")}</table>` : `<p class="empty">Not diagnosed yet.</p>`}
    <h3>Timeline</h3>
    <ul class="timeline">${d.timeline.filter((e) => e.kind !== "task").map((e) => `
      <li><time>${when(e.at)}</time><span class="kind">${esc(e.kind)}</span>${esc(e.actor)}: ${esc(e.message)}</li>`).join("")}</ul>`;
}

async function loadApprovals() {
  const data = await api("/api/v1/approvals?status=pending");
  $("#approval-count").textContent = data.items.length || "";
  $("#approval-table tbody").innerHTML = data.items.map((a) => `
    <tr><td>#${a.incident_id}</td><td>${esc(a.action)}</td><td>${esc(a.target)}</td><td>${esc(a.risk)}</td><td>${esc(a.reason)}</td>
      <td><button class="approve" data-decide="${a.id}" data-ok="1">Approve</button>
          <button class="reject" data-decide="${a.id}" data-ok="0">Reject</button></td></tr>`).join("") ||
    `<tr><td colspan="6" class="empty">Nothing waits for a decision.</td></tr>`;
}

async function loadDrifts() {
  const list = $("#drift-list");
  try {
    const data = await api("/api/v1/drift/proposals");
    list.innerHTML = data.items.map((p) => `
      <article class="detail"><h3>#${p.id} ${esc(p.title)} <small>(${esc(p.workspace)}, ${esc(p.status)})</small></h3>
        <p>${p.explanation.map((e) => esc(e)).join("<br>")}</p>
        <p class="${p.verification.ok ? "status-resolved" : "status-escalated"}">verification: ${p.verification.ok ? "patched config matches the live cloud" : "NOT verified"}
          ${p.needs_person.length ? ` · needs a person: ${esc(p.needs_person.join("; "))}` : ""}</p>
        <pre class="diff">${esc(p.diff)}</pre>
        ${p.instructions.length ? `<pre class="diff">${esc(p.instructions.join("\n"))}</pre>` : ""}
        ${p.branch ? `<p>committed to branch <code>${esc(p.branch)}</code></p>` : ""}
        ${p.review_comment ? `<p>review: ${esc(p.review_comment)} (${esc(p.reviewer)})</p>` : ""}
        ${p.status === "pending" ? `<button class="approve" data-drift="${p.id}" data-ok="1">Approve</button>
        <button class="reject" data-drift="${p.id}" data-ok="0">Reject</button>` : ""}</article>`).join("") ||
      `<p class="empty">No drift found yet. Reconciliation runs on a schedule; out-of-band cloud changes show up here as Terraform patches.</p>`;
  } catch (err) {
    list.innerHTML = `<p class="empty">Drift reconciliation is not available: ${esc(err.message)}</p>`;
  }
}

async function refresh() {
  try {
    await Promise.all([loadIncidents(), loadApprovals()]);
    if (state.selected) await loadDetail(state.selected);
    if (!$("#drifts").hidden) await loadDrifts();
    $("#stats").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    $("#stats").textContent = `API error: ${err.message}`;
  }
}

function showTab(name) {
  document.querySelectorAll(".tab").forEach((t) => (t.hidden = t.id !== name));
  document.querySelectorAll("nav a[data-tab]").forEach((a) => a.classList.toggle("active", a.dataset.tab === name));
  if (name === "drifts") loadDrifts();
}

document.addEventListener("click", async (event) => {
  const row = event.target.closest("#incident-table tbody tr[data-id]");
  if (row) { state.selected = Number(row.dataset.id); await loadDetail(state.selected); loadIncidents(); return; }
  const decide = event.target.closest("[data-decide]");
  if (decide) {
    decide.disabled = true;
    await api(`/api/v1/approvals/${decide.dataset.decide}/decision`, {
      method: "POST", body: JSON.stringify({ approved: decide.dataset.ok === "1", comment: "from console" }) })
      .catch((err) => alert(err.message));
    return refresh();
  }
  const drift = event.target.closest("[data-drift]");
  if (drift) {
    const approved = drift.dataset.ok === "1";
    const comment = approved ? "approved in console" : window.prompt("Why reject this patch? (recorded, and the reconciler learns from it)");
    if (!approved && !comment) return;
    drift.disabled = true;
    await api(`/api/v1/drift/proposals/${drift.dataset.drift}/review`, {
      method: "POST", body: JSON.stringify({ approved, comment }) })
      .catch((err) => alert(err.message));
    return loadDrifts();
  }
});
$("#status-filter").addEventListener("change", (e) => { state.status = e.target.value; state.page = 1; loadIncidents(); });
$("#prev").addEventListener("click", () => { state.page -= 1; loadIncidents(); });
$("#next").addEventListener("click", () => { state.page += 1; loadIncidents(); });
window.addEventListener("hashchange", () => showTab(location.hash.slice(1) || "incidents"));
showTab(location.hash.slice(1) || "incidents");
refresh();
setInterval(refresh, 3000);
