/* smsgate dashboard: segment counter, confirmations and live inbox updates. No dependencies. */
"use strict";

/* --- segment counter: mirrors messaging/encoding.py (GSM 03.38 or UCS-2, Twilio's counting) --- */
const GSM_BASIC = new Set(Array.from(
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"));
const GSM_EXT = new Set(Array.from("\f^{}\\[~]|€"));

function graphemes(text) {
  const out = [];
  const parts = typeof Intl !== "undefined" && Intl.Segmenter
    ? Array.from(new Intl.Segmenter(undefined, {granularity: "grapheme"}).segment(text), (s) => s.segment)
    : Array.from(text);
  for (const g of parts) {
    if (g === "\r\n") { out.push("\r", "\n"); } else { out.push(g); }
  }
  return out;
}

function pack(costs, single, multi) {
  const total = costs.reduce((a, b) => a + b, 0);
  if (total <= single) return 1;
  let segments = 1, used = 0;
  for (const c of costs) {
    if (used + c > multi) { segments += 1; used = 0; }
    used += c;
  }
  return segments;
}

function segmentInfo(text) {
  const gs = graphemes(text);
  const gsm = gs.map((g) => (g.length === 1 && GSM_BASIC.has(g) ? 1 : g.length === 1 && GSM_EXT.has(g) ? 2 : null));
  if (gsm.every((c) => c !== null)) {
    return {encoding: "GSM-7", segments: gsm.length ? pack(gsm, 160, 153) : 1, units: gsm.reduce((a, b) => a + b, 0)};
  }
  const ucs = gs.map((g) => g.length); /* UTF-16 code units, as JS strings count them */
  return {encoding: "UCS-2", segments: pack(ucs, 70, 67), units: ucs.reduce((a, b) => a + b, 0)};
}

function wireSegmentCounters() {
  document.querySelectorAll("[data-segment-form]").forEach((form) => {
    const input = form.querySelector("[data-segment-input]");
    const out = form.querySelector("[data-segment-counter]");
    if (!input || !out) return;
    const update = () => {
      const info = segmentInfo(input.value);
      const chars = graphemes(input.value).length;
      out.textContent = `${chars} character${chars === 1 ? "" : "s"} · ${info.segments} segment${info.segments === 1 ? "" : "s"} · ${info.encoding}` +
        (info.encoding === "UCS-2" && input.value ? " (a character outside GSM-7 halves what fits in a segment)" : "");
      out.dataset.segments = String(info.segments);
      out.dataset.encoding = info.encoding;
    };
    input.addEventListener("input", update);
    update();
  });
}

function wireConfirmations() {
  /* Delegated, so forms in rows fetched later by live updates ask too. */
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
}

function wireProviderForms() {
  /* Only the chosen provider's credential fields are shown (and submitted by name prefix). */
  document.querySelectorAll("[data-app-form]").forEach((form) => {
    const select = form.querySelector("[data-provider-select]");
    const update = () => form.querySelectorAll("[data-provider-fields]").forEach((set) => {
      set.hidden = set.dataset.providerFields !== select.value;
    });
    select.addEventListener("change", update);
    update();
  });
}

/* Copy buttons: data-copy is either "#id" of the element whose text to copy, or the text itself. */
function wireCopyButtons() {
  document.addEventListener("click", async (event) => {
    const button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
    if (!button) return;
    const wanted = button.dataset.copy;
    const source = wanted.startsWith("#") ? document.querySelector(wanted) : null;
    const text = source ? source.textContent.trim() : wanted;
    try {
      await navigator.clipboard.writeText(text);
    } catch (err) {
      /* No clipboard API (plain http on another host): select it so Ctrl-C copies. */
      if (!source) return;
      window.getSelection().selectAllChildren(source);
      document.execCommand("copy");
    }
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
}

/* --- live updates over /ws/inbox/ --- */
function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

async function fetchHTML(url) {
  const response = await fetch(url, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}});
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.text();
}

function fromHTML(html) {
  const t = document.createElement("template");
  t.innerHTML = html.trim();
  return t.content.firstElementChild;
}

/* Many events arrive in bursts (a broadcast sends hundreds): run each refresh at most once per
   `wait` ms, always ending with a run after the last event. */
const timers = new Map();
function debounce(key, wait, fn) {
  if (timers.has(key)) return;
  timers.set(key, setTimeout(() => { timers.delete(key); fn(); }, wait));
}

function refreshUnreadTotal() {
  debounce("unread", 300, async () => {
    const badge = document.querySelector("[data-unread-total]");
    if (!badge) return;
    const response = await fetch("/inbox/unread/", {credentials: "same-origin"});
    if (!response.ok) return;
    const {unread} = await response.json();
    badge.textContent = String(unread);
    badge.hidden = unread === 0;
  });
}

/* Conversations that changed since the last refresh. A burst touching many of them at once (a
   broadcast) is not fetched row by row: the page says there is new activity instead. */
const MAX_LIVE_ROWS = 20;
const changedConversations = new Set();

function showNewActivity() {
  const notice = document.querySelector("[data-new-activity]");
  if (notice) notice.hidden = false;
}

async function refreshRow(list, conversationId) {
  const existing = document.getElementById(`conv-${conversationId}`);
  const live = list.hasAttribute("data-live-insert");
  if (!live && !existing) { showNewActivity(); return; }
  const row = fromHTML(await fetchHTML(`/inbox/${conversationId}/row/`));
  if (live) {
    existing?.remove();
    list.querySelector("[data-empty]")?.remove();
    list.prepend(row);
  } else {
    /* Filtered or paged lists cannot know where a row belongs now: update it in place. */
    existing.replaceWith(row);
    showNewActivity();
  }
}

function refreshConversationRow(conversationId) {
  const list = document.querySelector("[data-conversation-list]");
  if (!list) return;
  changedConversations.add(conversationId);
  debounce("rows", 250, async () => {
    const ids = Array.from(changedConversations);
    changedConversations.clear();
    if (ids.length > MAX_LIVE_ROWS) { showNewActivity(); return; }
    for (const id of ids) await refreshRow(list, id);
  });
}

function refreshThreadMessage(thread, event) {
  const conversationId = thread.dataset.thread;
  debounce(`msg:${event.message_id}`, 150, async () => {
    const row = fromHTML(await fetchHTML(`/inbox/${conversationId}/m/${event.message_id}/`));
    const existing = document.getElementById(`msg-${event.message_id}`);
    if (existing) {
      existing.replaceWith(row);
    } else {
      thread.querySelector("[data-empty]")?.remove();
      thread.append(row);
      row.scrollIntoView({block: "end"});
      if (event.direction === "inbound" && document.visibilityState === "visible") {
        fetch(`/inbox/${conversationId}/read/`, {method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": csrfToken()}});
      }
    }
  });
}

function refreshBroadcast(card) {
  debounce(`broadcast:${card.dataset.broadcast}`, 400, async () => {
    const response = await fetch(card.dataset.progressUrl, {credentials: "same-origin"});
    if (!response.ok) return;
    const p = await response.json();
    card.querySelector("[data-progress-done]").style.width = `${p.percent}%`;
    card.querySelector("[data-progress-delivered]").style.width = `${p.delivered_percent}%`;
    card.querySelector("[data-progress-bar]").setAttribute("aria-valuenow", String(p.percent));
    card.querySelector("[data-progress-percent]").textContent = `${p.percent}%`;
    for (const key of ["total", "sent", "delivered", "failed"]) {
      const el = card.querySelector(`[data-progress-count="${key}"]`);
      if (el) el.textContent = String(p[key]);
    }
  });
}

function onInboxEvent(event) {
  /* A bulk send or a phone's batch arrives as one `messages.created` event listing them all. */
  const items = Array.isArray(event.messages)
    ? event.messages.map((m) => ({event: event.event, ...m}))
    : [event];
  refreshUnreadTotal();
  const thread = document.querySelector("[data-thread]");
  for (const item of items) {
    if (item.conversation_id) refreshConversationRow(item.conversation_id);
    if (thread && item.message_id && thread.dataset.thread === item.conversation_id) {
      refreshThreadMessage(thread, item);
    }
    document.dispatchEvent(new CustomEvent("smsgate:inbox", {detail: item}));
  }
  const card = document.querySelector("[data-broadcast]");
  if (card && items.some((item) => item.direction === "outbound")) refreshBroadcast(card);
}

function connectLive() {
  if (document.body.dataset.live !== "on" || !("WebSocket" in window)) return;
  const state = document.querySelector("[data-live-state]");
  const setState = (value, label) => {
    if (!state) return;
    state.dataset.liveState = value;
    state.title = label;
  };
  let delay = 1000;
  const open = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/inbox/`);
    socket.addEventListener("open", () => {
      if (state && state.dataset.liveState === "disconnected") {
        /* Events sent while the socket was down are lost: catch up on what the header and a
           broadcast page show (a thread or list shows a notice instead of guessing). */
        refreshUnreadTotal();
        const card = document.querySelector("[data-broadcast]");
        if (card) refreshBroadcast(card);
        showNewActivity();
      }
      delay = 1000;
      setState("connected", "Live updates on");
    });
    socket.addEventListener("message", (message) => {
      try { onInboxEvent(JSON.parse(message.data)); } catch (err) { console.error(err); }
    });
    socket.addEventListener("close", () => {
      setState("disconnected", "Live updates off; reconnecting…");
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 30000);
    });
  };
  open();
  /* A broadcast page also polls slowly, so the bar is right even if the socket was down. */
  const card = document.querySelector("[data-broadcast]");
  if (card) setInterval(() => refreshBroadcast(card), 10000);
}

/* The phone-width header: the Menu button opens and closes the links and account panel. */
function wireMenu() {
  const button = document.querySelector("[data-menu-toggle]");
  if (!button) return;
  const bar = button.closest(".topbar");
  button.addEventListener("click", () => {
    const open = !bar.classList.contains("menu-open");
    bar.classList.toggle("menu-open", open);
    button.setAttribute("aria-expanded", String(open));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wireMenu();
  wireCopyButtons();
  wireSegmentCounters();
  wireConfirmations();
  wireProviderForms();
  connectLive();
  const thread = document.querySelector("[data-thread]");
  if (thread && thread.lastElementChild) thread.lastElementChild.scrollIntoView({block: "end"});
});

window.smsgate = {segmentInfo};
