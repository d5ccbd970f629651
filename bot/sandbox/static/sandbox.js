// The sandbox page: Telegram chats driven through the fake Telegram's /_sim/ API, and a WhatsApp
// chat driven through the Twilio fake's /_wa/ API (same origin). Plain JS, no build step. Bot
// text is always set with textContent (never parsed as HTML).
"use strict";

const panesByChat = new Map();
let config = null;
let lastEvent = 0;
let replaying = true; // the first answer after a (re)load is history: no toasts for old answers

document.addEventListener("DOMContentLoaded", () => {
  main().catch((err) => setStatus(false, String(err)));
});

async function main() {
  config = await api("GET", "/sandbox.json");
  for (const conf of config.panes) setupPane(conf);
  if (config.whatsapp) {
    const wa = setupWhatsApp(config.whatsapp);
    waLoop(wa); // its own long poll, beside Telegram's
  }
  for (;;) await pollOnce();
}

// ---------------------------------------------------------------- panes

function setupPane(conf) {
  const root = document.querySelector(`[data-pane="${conf.key}"]`);
  root.append(document.getElementById("chat").content.cloneNode(true));
  root.querySelector(".who").textContent = `Anda: ${conf.who} · ${conf.note}`;
  const pane = {
    conf,
    root,
    list: root.querySelector(".messages"),
    toasts: root.querySelector(".toasts"),
    nodes: new Map(),
  };
  const form = root.querySelector(".composer");
  const input = form.querySelector(".text");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    sendText(pane, text);
  });
  form.querySelector(".locate").addEventListener("click", () => sendLocation(pane));
  const file = form.querySelector("input[type=file]");
  file.addEventListener("change", () => {
    if (file.files.length) sendPhoto(pane, file.files[0], input);
    file.value = "";
  });
  panesByChat.set(conf.chat_id, pane);
}

function clearPanes() {
  for (const pane of panesByChat.values()) {
    pane.list.replaceChildren();
    pane.nodes.clear();
  }
}

// ---------------------------------------------------------------- user actions

function who(pane) {
  return { chat_id: pane.conf.chat_id, user_id: pane.conf.user_id };
}

function sendText(pane, text) {
  return act(pane, api("POST", "/_sim/text", { ...who(pane), text }));
}

function sendLocation(pane) {
  return act(pane, api("POST", "/_sim/location", { ...who(pane), ...config.pin }));
}

function sendPhoto(pane, file, captionInput) {
  const form = new FormData();
  form.append("chat_id", pane.conf.chat_id);
  form.append("user_id", pane.conf.user_id);
  const caption = captionInput.value.trim();
  if (caption) form.append("caption", caption);
  captionInput.value = "";
  form.append("photo", file, file.name);
  return act(pane, api("POST", "/_sim/photo", form));
}

function press(pane, messageId, data, button) {
  button.classList.add("busy");
  const body = { ...who(pane), message_id: messageId, data };
  return act(pane, api("POST", "/_sim/button", body)).finally(() => {
    setTimeout(() => button.classList.remove("busy"), 600);
  });
}

async function act(pane, request) {
  try {
    await request;
  } catch (err) {
    toast(pane, String(err.message || err), "error");
  }
}

// ---------------------------------------------------------------- events

async function pollOnce() {
  try {
    const first = lastEvent === 0;
    const res = await api("GET", `/_sim/events?after=${lastEvent}&timeout=${first ? 0 : 25}`);
    if (res.last_id < lastEvent) {
      clearPanes(); // the sandbox restarted: its chats start empty again
      lastEvent = 0;
      return;
    }
    for (const event of res.events) {
      handle(event);
      lastEvent = event.id;
    }
    replaying = false;
    setStatus(true);
  } catch (err) {
    setStatus(false, String(err.message || err));
    await new Promise((resolve) => setTimeout(resolve, 1500));
  }
}

function handle(event) {
  const pane = panesByChat.get(event.chat_id);
  if (!pane) return;
  const data = event.data;
  if (event.type === "update" && data.message) {
    put(pane, data.message.message_id, userMessage(pane, data.message, event.at));
  } else if (event.type === "message") {
    put(pane, data.message_id, botMessage(pane, data, event.at));
  } else if (event.type === "edit") {
    put(pane, data.message_id, botMessage(pane, data, event.at, true));
  } else if (event.type === "delete") {
    pane.nodes.get(data.message_id)?.remove();
  } else if (event.type === "callback_answer" && data.text && !replaying) {
    toast(pane, data.text, data.show_alert ? "alert" : "");
  } else if (event.type === "chat_action" && !replaying) {
    typing(pane);
  }
}

function put(pane, messageId, node) {
  const old = pane.nodes.get(messageId);
  pane.nodes.set(messageId, node);
  if (old && old.isConnected) {
    old.replaceWith(node); // an edit keeps its place in the chat
    return;
  }
  pane.list.append(node);
  scrollDown(pane);
}

function scrollDown(pane) {
  pane.list.scrollTop = pane.list.scrollHeight;
}

// ---------------------------------------------------------------- rendering

function userMessage(pane, message, at) {
  const mine = message.from && message.from.id === pane.conf.user_id;
  const li = el("li", mine ? "msg me" : "msg other");
  if (!mine && message.from) li.append(el("div", "author", message.from.first_name));
  if (message.photo && message.photo.length) {
    li.append(photo(pane, message.photo[message.photo.length - 1].file_id));
  }
  if (message.location) li.append(pin(message.location.latitude, message.location.longitude));
  const text = message.text || message.caption;
  if (text) li.append(el("div", "text", text));
  if (!li.childElementCount) li.append(el("div", "text muted", "(pesan)"));
  li.append(meta(at, false));
  return li;
}

function botMessage(pane, rec, at, edited) {
  const li = el("li", "msg bot");
  li.dataset.messageId = rec.message_id;
  if (rec.kind === "photo" && rec.file_id) li.append(photo(pane, rec.file_id));
  if ((rec.kind === "document" || rec.kind === "voice") && rec.file_id) {
    const link = el("a", "file", `📎 ${rec.filename || rec.kind}`);
    link.href = `/_sim/files/${encodeURIComponent(rec.file_id)}`;
    link.target = "_blank";
    li.append(link);
  }
  if (rec.location) li.append(pin(rec.location[0], rec.location[1]));
  const text = rec.text || rec.caption;
  if (text) li.append(el("div", "text", text)); // the fake keeps the visible text (no markup)
  const markup = rec.reply_markup || {};
  if (markup.inline_keyboard) li.append(inlineKeyboard(pane, rec.message_id, markup));
  if (markup.keyboard) li.append(replyKeyboard(pane, markup));
  li.append(meta(at, edited || (rec.edits && rec.edits.length > 0)));
  return li;
}

function inlineKeyboard(pane, messageId, markup) {
  const box = el("div", "keyboard");
  for (const row of markup.inline_keyboard) {
    const line = el("div", "row");
    for (const b of row) {
      if (b.url) {
        const link = el("a", "kb", b.text);
        link.href = b.url;
        link.target = "_blank";
        link.rel = "noopener";
        line.append(link);
        continue;
      }
      const button = el("button", "kb", b.text);
      button.type = "button";
      button.addEventListener("click", () => press(pane, messageId, b.callback_data, button));
      line.append(button);
    }
    box.append(line);
  }
  return box;
}

function replyKeyboard(pane, markup) {
  const box = el("div", "keyboard reply");
  for (const row of markup.keyboard) {
    const line = el("div", "row");
    for (const b of row) {
      const label = typeof b === "string" ? b : b.text;
      const button = el("button", "kb", label);
      button.type = "button";
      const wantsPin = typeof b === "object" && b.request_location;
      button.addEventListener("click", () =>
        wantsPin ? sendLocation(pane) : sendText(pane, label),
      );
      line.append(button);
    }
    box.append(line);
  }
  return box;
}

function photo(pane, fileId) {
  const img = document.createElement("img");
  img.className = "photo";
  img.alt = "foto";
  img.src = `/_sim/files/${encodeURIComponent(fileId)}`;
  img.addEventListener("load", () => scrollDown(pane), { once: true });
  return img;
}

function pin(lat, lon) {
  const link = el("a", "pin", `📍 ${lat.toFixed(5)}, ${lon.toFixed(5)}`);
  link.href = `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=17/${lat}/${lon}`;
  link.target = "_blank";
  link.rel = "noopener";
  return link;
}

function meta(at, edited) {
  const time = new Date(at * 1000).toLocaleTimeString("id-ID", {
    hour: "2-digit",
    minute: "2-digit",
  });
  return el("div", "meta", edited ? `diedit ${time}` : time);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---------------------------------------------------------------- WhatsApp

function setupWhatsApp(conf) {
  const root = document.querySelector(`[data-pane="${conf.key}"]`);
  root.append(document.getElementById("wa-chat").content.cloneNode(true));
  root.querySelector(".who").textContent = `Anda: ${conf.who} · ${conf.note}`;
  const wa = { conf, root, list: root.querySelector(".messages"), last: 0 };
  const form = root.querySelector(".composer");
  const input = form.querySelector(".text");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    waAct(wa, api("POST", "/_wa/text", { number: conf.number, text }));
  });
  form.querySelector(".locate").addEventListener("click", () =>
    waAct(wa, api("POST", "/_wa/location", { number: conf.number, ...config.pin })),
  );
  const file = form.querySelector("input[type=file]");
  file.addEventListener("change", () => {
    if (file.files.length) {
      const body = new FormData();
      body.append("number", conf.number);
      const caption = input.value.trim();
      if (caption) body.append("caption", caption);
      input.value = "";
      body.append("photo", file.files[0], file.files[0].name);
      waAct(wa, api("POST", "/_wa/photo", body));
    }
    file.value = "";
  });
  return wa;
}

async function waLoop(wa) {
  for (;;) {
    try {
      const number = encodeURIComponent(wa.conf.number);
      const wait = wa.last === 0 ? 0 : 25;
      const res = await api("GET", `/_wa/chat?number=${number}&after=${wa.last}&timeout=${wait}`);
      if (res.last_id < wa.last) {
        wa.list.replaceChildren(); // the sandbox restarted: the chat starts empty again
        wa.last = 0;
        continue;
      }
      for (const item of res.items) {
        wa.list.append(waMessage(wa, item));
        wa.last = Math.max(wa.last, item.id);
      }
      if (res.items.length) wa.list.scrollTop = wa.list.scrollHeight;
    } catch (err) {
      await new Promise((resolve) => setTimeout(resolve, 1500));
    }
  }
}

async function waAct(wa, request) {
  try {
    await request;
  } catch (err) {
    const li = el("li", "msg sys", `⚠ ${String(err.message || err)}`);
    wa.list.append(li);
  }
}

function waMessage(wa, item) {
  const mine = item.dir === "in";
  const li = el("li", mine ? "msg me" : "msg bot");
  li.dataset.sid = item.sid;
  for (const src of item.media) {
    const img = document.createElement("img");
    img.className = "photo";
    img.alt = "foto";
    img.src = src;
    img.addEventListener("load", () => (wa.list.scrollTop = wa.list.scrollHeight), { once: true });
    li.append(img);
  }
  if (item.location) li.append(pin(item.location[0], item.location[1]));
  if (item.body) li.append(el("div", "text", item.body));
  if (!li.childElementCount) li.append(el("div", "text muted", "(pesan)"));
  if (item.list_button) {
    li.append(waList(wa, item));
  }
  li.append(meta(item.at, false));
  if (item.buttons.length && !item.list_button) {
    const box = el("div", "wa-replies");
    for (const b of item.buttons) {
      const button = el("button", "wa-reply", b.title);
      button.type = "button";
      button.addEventListener("click", () => waTap(wa, item.sid, b.id, button));
      box.append(button);
    }
    li.append(box);
  }
  return li;
}

function waList(wa, item) {
  const box = el("div", "wa-picker");
  const open = el("button", "wa-open", `≡ ${item.list_button}`);
  open.type = "button";
  const list = el("div", "wa-list");
  list.hidden = true;
  open.addEventListener("click", () => (list.hidden = !list.hidden));
  for (const b of item.buttons) {
    const choice = el("button", "wa-item", b.title);
    choice.type = "button";
    if (b.description) choice.append(el("small", "", b.description));
    choice.addEventListener("click", () => {
      list.hidden = true;
      waTap(wa, item.sid, b.id, choice);
    });
    list.append(choice);
  }
  box.append(open, list);
  return box;
}

function waTap(wa, sid, id, button) {
  button.classList.add("busy");
  return waAct(wa, api("POST", "/_wa/tap", { number: wa.conf.number, sid, id })).finally(() => {
    setTimeout(() => button.classList.remove("busy"), 600);
  });
}

// ---------------------------------------------------------------- notices

function toast(pane, text, kind) {
  const note = el("div", `toast ${kind}`.trim(), text);
  note.setAttribute("role", kind === "error" ? "alert" : "status");
  note.addEventListener("click", () => note.remove());
  pane.toasts.append(note);
  if (kind !== "alert") setTimeout(() => note.remove(), 6000);
}

function typing(pane) {
  pane.root.classList.add("typing");
  clearTimeout(pane.typingTimer);
  pane.typingTimer = setTimeout(() => pane.root.classList.remove("typing"), 3000);
}

function setStatus(ok, detail) {
  const status = document.getElementById("status");
  status.classList.toggle("down", !ok);
  status.textContent = ok
    ? `terhubung ke bot @${config.bot.username}`
    : `terputus, mencoba lagi… (${detail || "offline"})`;
}

// ---------------------------------------------------------------- HTTP

async function api(method, url, body) {
  const init = { method, headers: {} };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(url, init);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || data.description || `HTTP ${res.status}`);
  return data;
}
