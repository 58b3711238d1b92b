// drover status page: live updates over Server-Sent Events, filters, and the app page's buttons.
// Data from the server only ever reaches the page through textContent and attributes, never as
// markup. The app page re-reads its own server-rendered (escaped) HTML when its app changes.
"use strict";

(function () {
  const page = document.body.dataset.page;

  // ---- small DOM helpers -------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function relative(unix) {
    const s = Math.max(0, Math.floor(Date.now() / 1000) - unix);
    if (s < 60) return s + "s ago";
    if (s < 3600) return Math.floor(s / 60) + "m ago";
    if (s < 86400) return Math.floor(s / 3600) + "h ago";
    return Math.floor(s / 86400) + "d ago";
  }

  function timeEl(moment) {
    return el("time", { "data-unix": moment.unix, title: moment.absolute }, relative(moment.unix));
  }

  function refreshTimes() {
    for (const t of document.querySelectorAll("time[data-unix]")) {
      t.textContent = relative(Number(t.dataset.unix));
    }
  }
  setInterval(refreshTimes, 15000);

  // ---- overview rows -------------------------------------------------------------------------
  function plural(n, word) { return n + " " + word + (n > 1 ? "s" : ""); }

  function buildRow(app) {
    const name = el("td", null, el("a", { href: "/apps/" + encodeURIComponent(app.name) }, app.name));
    if (app.pinned) name.append(" ", el("span", { class: "tag pin", title: "pinned (rollback)" }, "pinned " + app.pinned));
    if (app.drift) name.append(" ", el("span", { class: "tag drift", title: "changed in the cluster, not in Git" }, "drift"));
    const status = el("td", null,
      el("span", { class: "badge s-" + app.sync }, app.sync), " ",
      el("span", { class: "badge h-" + app.health }, app.health));
    if (app.errors) status.append(" ", el("span", { class: "tag err" }, plural(app.errors, "error")));
    if (app.warnings) status.append(" ", el("span", { class: "tag warn" }, plural(app.warnings, "warning")));
    const revision = el("td", null, el("code", null, app.short_revision));
    if (app.commit) {
      revision.append(" " + app.commit.subject, el("br"),
        el("small", null, app.commit.author + " · ", timeEl(app.commit.time)));
    }
    const last = el("td");
    if (app.last_sync) {
      last.append(el("span", { class: "r-" + app.last_sync.result }, app.last_sync.result), " ", timeEl(app.last_sync.at));
      if (app.last_sync.duration) last.append(" ", el("small", null, "in " + app.last_sync.duration));
    } else {
      last.append(el("span", { class: "muted" }, "never"));
    }
    const counts = el("td");
    for (const [change, count] of Object.entries(app.counts)) {
      if (change === "not-managed") continue;
      counts.append(el("span", { class: "count c-" + change }, count + " " + change), " ");
    }
    if (app.counts["not-managed"]) counts.append(el("span", { class: "count muted" }, app.counts["not-managed"] + " not managed"));
    return el("tr", {
      "data-app": app.name, "data-sync": app.sync, "data-health": app.health,
      "data-drift": String(app.drift), "data-failed": String(app.failed), "data-pinned": String(app.pinned !== null),
    }, name, status, el("td", null, app.phase), revision, last, counts);
  }

  function rowOf(name) {
    for (const row of document.querySelectorAll("#apps tr[data-app]")) {
      if (row.dataset.app === name) return row;
    }
    return null;
  }

  function updateOverview(message) {
    const body = document.getElementById("apps");
    if (!body) return;
    for (const app of message.apps) {
      const fresh = buildRow(app);
      const old = rowOf(app.name);
      if (old) {
        old.replaceWith(fresh);
      } else {
        // Keep the rows sorted by name, as the server renders them.
        const after = Array.from(body.querySelectorAll("tr[data-app]")).find((r) => r.dataset.app > app.name);
        body.insertBefore(fresh, after || null);
      }
    }
    for (const name of message.removed || []) {
      const old = rowOf(name);
      if (old) old.remove();
    }
    applyFilter();
  }

  // ---- filter and search ---------------------------------------------------------------------
  let filter = "All";
  function matches(row) {
    const d = row.dataset;
    switch (filter) {
      case "All": return true;
      case "OutOfSync": return d.sync === "OutOfSync" || d.sync === "InvalidSpec";
      case "Degraded": return d.health === "Degraded" || d.health === "Missing";
      case "Progressing": return d.health === "Progressing";
      case "Failed": return d.failed === "true" || d.sync === "InvalidSpec";
      case "Drift": return d.drift === "true";
      case "Pinned": return d.pinned === "true";
      case "Unknown": return d.sync === "Unknown" || d.health === "Unknown";
      default: return true;
    }
  }
  function applyFilter() {
    const search = document.getElementById("search");
    if (!search) return;
    const needle = search.value.trim().toLowerCase();
    let shown = 0, total = 0;
    for (const row of document.querySelectorAll("#apps tr[data-app]")) {
      total++;
      const visible = matches(row) && (!needle || row.dataset.app.toLowerCase().includes(needle));
      row.hidden = !visible;
      if (visible) shown++;
    }
    const counter = document.getElementById("shown");
    if (counter) counter.textContent = shown + " of " + total + " apps";
  }
  if (page === "overview") {
    for (const button of document.querySelectorAll("[data-filter]")) {
      button.addEventListener("click", () => {
        filter = button.dataset.filter;
        for (const b of document.querySelectorAll("[data-filter]")) b.setAttribute("aria-pressed", String(b === button));
        applyFilter();
      });
    }
    document.getElementById("search").addEventListener("input", applyFilter);
    applyFilter();
  }

  // ---- app page ------------------------------------------------------------------------------
  const main = document.querySelector("main[data-app]");
  const appName = main ? main.dataset.app : null;
  let reloading = false, again = false;

  // Re-read this page (server-rendered, escaped) and swap its live parts in place.
  async function reloadAppParts() {
    if (reloading) { again = true; return; }
    reloading = true;
    try {
      const answer = await fetch(location.pathname, { headers: { Accept: "text/html" } });
      if (!answer.ok) return;
      const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
      const freshMain = fresh.querySelector("main[data-app]");
      if (!freshMain) return;
      main.dataset.sync = freshMain.dataset.sync;
      main.dataset.health = freshMain.dataset.health;
      for (const id of ["app-head", "app-body"]) {
        const mine = document.getElementById(id), theirs = fresh.getElementById(id);
        if (!mine || !theirs) continue;
        const open = Array.from(mine.querySelectorAll("details[open]")).map((d) => d.className);
        const adopted = document.importNode(theirs, true);
        for (const d of adopted.querySelectorAll("details")) if (open.includes(d.className)) d.open = true;
        mine.replaceWith(adopted);
      }
      const select = document.getElementById("rollback-revision"), freshSelect = fresh.getElementById("rollback-revision");
      if (select && freshSelect) {
        const chosen = select.value;
        select.replaceChildren(...Array.from(freshSelect.options).map((o) => el("option", { value: o.value }, o.textContent)));
        if (chosen) select.value = chosen;
      }
      refreshTimes();
    } catch (e) {
      // The stream will say when to try again.
    } finally {
      reloading = false;
      if (again) { again = false; reloadAppParts(); }
    }
  }

  function updateApp(message) {
    const mine = message.apps.find((a) => a.name === appName);
    if (!mine) return;
    main.dataset.sync = mine.sync;
    main.dataset.health = mine.health;
    reloadAppParts();
  }

  // ---- alerts and banner ---------------------------------------------------------------------
  function updateAlerts(alerts) {
    const list = document.getElementById("alerts");
    if (!list) return;
    const shown = alerts.filter((a) => !appName || a.app === appName).reverse().slice(0, 50);
    const items = shown.map((a) => {
      const li = el("li", { "data-alert-id": a.id, "data-trigger": a.trigger, "data-state": a.state },
        el("span", { class: "tag a-" + a.state }, a.state), " " + a.trigger);
      if (a.app && !appName) li.append(" ", el("a", { href: "/apps/" + encodeURIComponent(a.app) }, a.app));
      if (a.resource) li.append(" ", el("code", null, a.resource));
      li.append(": " + a.message + " ", timeEl({ unix: a.at, absolute: new Date(a.at * 1000).toISOString() }));
      return li;
    });
    if (items.length === 0) items.push(el("li", { class: "muted none" }, "none"));
    list.replaceChildren(...items);
  }

  function updateBanner(repo) {
    const banner = document.getElementById("banner");
    if (!banner) return;
    banner.replaceChildren(el("ul", null, ...repo.problems.map((p) => el("li", null, p))));
    banner.hidden = repo.problems.length === 0;
  }

  // ---- the stream ----------------------------------------------------------------------------
  const live = document.getElementById("live");
  function setLive(on) {
    if (!live) return;
    live.textContent = on ? "live" : "reconnecting…";
    live.classList.toggle("on", on);
  }
  function connect() {
    const stream = new EventSource("/api/v1/stream");
    stream.addEventListener("open", () => setLive(true));
    stream.addEventListener("apps", (event) => {
      const message = JSON.parse(event.data);
      if (page === "overview") updateOverview(message);
      if (page === "app") updateApp(message);
    });
    stream.addEventListener("alerts", (event) => updateAlerts(JSON.parse(event.data)));
    stream.addEventListener("repo", (event) => updateBanner(JSON.parse(event.data)));
    stream.addEventListener("error", () => {
      setLive(false);
      // The browser retries by itself unless the stream was refused; then try again later.
      if (stream.readyState === EventSource.CLOSED) {
        setTimeout(connect, 3000);
      }
    });
  }
  if (page === "overview" || page === "app") connect();

  // ---- buttons -------------------------------------------------------------------------------
  const TOKEN_KEY = "drover-api-token";
  const actions = document.getElementById("actions");
  if (actions && actions.dataset.changes === "on") {
    const tokenInput = document.getElementById("token");
    const answer = document.getElementById("answer");
    tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || "";
    tokenInput.addEventListener("change", () => sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim()));
    document.getElementById("forget-token").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      tokenInput.value = "";
    });
    function say(ok, text) {
      answer.textContent = text;
      answer.className = ok ? "ok" : "bad";
    }
    const paths = {
      sync: () => ["/api/v1/apps/" + encodeURIComponent(appName) + "/sync", {}],
      refresh: () => ["/api/v1/refresh", {}],
      rollback: () => ["/api/v1/apps/" + encodeURIComponent(appName) + "/rollback",
        { revision: document.getElementById("rollback-revision").value }],
      unpin: () => ["/api/v1/apps/" + encodeURIComponent(appName) + "/unpin", {}],
    };
    for (const button of actions.querySelectorAll("button[data-action]")) {
      button.addEventListener("click", async () => {
        const token = tokenInput.value.trim();
        if (!token) { say(false, "paste the API token first"); return; }
        sessionStorage.setItem(TOKEN_KEY, token);
        const [path, body] = paths[button.dataset.action]();
        say(true, button.dataset.action + "…");
        try {
          const reply = await fetch(path, {
            method: "POST",
            headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
            body: JSON.stringify(body),
            credentials: "same-origin",
          });
          let text = await reply.text();
          try {
            const json = JSON.parse(text);
            text = json.error ? json.error : JSON.stringify(json);
          } catch (e) { /* not JSON: show as is */ }
          say(reply.ok, reply.status + " " + text);
        } catch (e) {
          say(false, "request failed: " + e);
        }
      });
    }
  }
})();
