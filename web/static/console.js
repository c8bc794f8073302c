// The console's progressive layer: pages are server-rendered; htmx swaps fragments. This file only
// (1) turns old hash links (#incidents/1, Slack messages) into real paths, (2) shows times in the
// reader's zone, (3) refreshes the live region on server-sent events, (4) shows API errors.
(function () {
  const legacy = location.hash.match(/^#(incidents|approvals|drifts?)(?:\/(\d+))?$/);
  if (legacy) {
    const base = legacy[1] === "incidents" ? "/incidents" : legacy[1] === "approvals" ? "/approvals" : "/drift";
    location.replace(base + (legacy[2] && base === "/incidents" ? "/" + legacy[2] : ""));
    return;
  }
  const format = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" });
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach((el) => {
      const when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) { el.title = el.textContent.trim(); el.textContent = format.format(when); }
    });
  }
  function typing(live) {
    const el = document.activeElement;
    return live.contains(el) && /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName) && (el.value || "") !== "";
  }
  document.addEventListener("DOMContentLoaded", () => {
    localTimes(document);
    const live = document.querySelector("[data-live]");
    if (live && window.EventSource) {
      let pending = false;
      // never replace what the reader is typing or submitting: checked when the refresh is asked for and
      // again when its answer arrives (they may have started typing while it was on the way)
      const busy = () => typing(live) || live.querySelector(".htmx-request") !== null;
      const refresh = () => {
        if (busy()) { pending = true; return; }
        pending = false;
        htmx.ajax("GET", location.pathname + location.search,
          { target: "#live", swap: "innerHTML", headers: { "X-Live-Refresh": "1" } });
      };
      document.addEventListener("htmx:beforeSwap", (e) => {
        const headers = (e.detail.requestConfig && e.detail.requestConfig.headers) || {};
        if (headers["X-Live-Refresh"] && busy()) { e.detail.shouldSwap = false; pending = true; }
      });
      const events = new EventSource("/events");
      events.addEventListener("change", refresh);
      document.addEventListener("focusout", () => { if (pending) setTimeout(refresh, 100); });
    }
  });
  // theme: system -> light -> dark, kept in a cookie so the server renders the choice (no flash on load)
  document.addEventListener("click", (e) => {
    const button = e.target.closest("#theme-toggle");
    if (!button) return;
    const next = { auto: "light", light: "dark", dark: "auto" }[button.dataset.theme] || "light";
    button.dataset.theme = next;
    button.textContent = "Theme: " + (next === "auto" ? "system" : next);
    if (next === "auto") {
      document.documentElement.removeAttribute("data-theme");
      document.cookie = "theme=; path=/; max-age=0; samesite=lax";
    } else {
      document.documentElement.setAttribute("data-theme", next);
      document.cookie = "theme=" + next + "; path=/; max-age=31536000; samesite=lax";
    }
  });
  // time presets: one click fills "Opened since" and re-runs the filter (the links work without JS too)
  document.addEventListener("click", (e) => {
    const preset = e.target.closest("[data-since]");
    const form = preset && preset.closest("form.filters");
    if (!form) return;
    e.preventDefault();
    form.elements.since.value = preset.dataset.since;
    if (!preset.dataset.since) form.elements.until.value = "";
    form.dispatchEvent(new Event("change", { bubbles: true }));
  });
  document.addEventListener("htmx:afterSwap", (e) => { localTimes(e.detail.target); document.getElementById("flash").textContent = ""; });
  document.addEventListener("htmx:responseError", (e) => {
    let detail = e.detail.xhr.statusText;
    try { detail = JSON.parse(e.detail.xhr.responseText).detail || detail; } catch (_) { /* not JSON */ }
    if (e.detail.xhr.status === 401) detail += " (sign in again)";
    document.getElementById("flash").textContent = detail;
  });
})();
