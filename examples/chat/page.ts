/**
 * The chat page served at `GET /`: a message list, who is in the room, a
 * text input, and a script that follows the room with the topic follower's
 * wire format (docs/history.md): it keeps the room's messages and the last
 * position in `sessionStorage`, and after a reload or a lost connection asks
 * to resume from that position, so every message shows once, in order.
 */
export const CHAT_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>wsport chat</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
  #messages { list-style: none; padding: 0; min-height: 10rem; border: 1px solid #ccc; }
  #messages li { padding: .25rem .5rem; border-bottom: 1px solid #eee; }
  #status, #members, #notice { color: #666; }
</style>
</head>
<body>
<h1>Room <span id="room"></span></h1>
<p id="status">connecting…</p>
<p>In the room: <span id="members"></span></p>
<p id="notice"></p>
<ul id="messages"></ul>
<form id="form"><input id="text" autocomplete="off" placeholder="Say something" autofocus> <button>Send</button></form>
<script>
  const params = new URLSearchParams(location.search);
  const room = params.get("room") || "lobby";
  const name = params.get("name") || "guest-" + Math.random().toString(36).slice(2, 6);
  const topic = "room:" + room;
  document.getElementById("room").textContent = room;
  const status = document.getElementById("status");
  const list = document.getElementById("messages");
  const notice = document.getElementById("notice");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = scheme + "//" + location.host + "/rooms/" + encodeURIComponent(room) +
    "?follow&name=" + encodeURIComponent(name);

  // What this tab has shown, so that a reload shows it again and resumes after it.
  const storageKey = "wsport-chat:" + room;
  const saved = JSON.parse(sessionStorage.getItem(storageKey) || '{"texts":[],"position":null}');
  let position = saved.position;
  const show = (text) => {
    const item = document.createElement("li");
    item.textContent = text;
    list.append(item);
  };
  saved.texts.forEach(show);
  const save = () => sessionStorage.setItem(storageKey, JSON.stringify(saved));
  // Keeps the later position (or the one of a newer epoch: the history was lost).
  const advance = (next) => {
    if (!next) return;
    if (!position || position.epoch !== next.epoch || position.offset < next.offset) position = next;
    saved.position = position;
    save();
  };

  const members = new Map();
  const showMembers = () => {
    document.getElementById("members").textContent = [...members.values()].map((m) => m.info.name).join(", ");
  };

  let socket;
  let delay = 250;
  function connect() {
    socket = new WebSocket(url);
    socket.onopen = () => {
      delay = 250;
      socket.send(JSON.stringify({ subscribe: topic, since: position || undefined, presence: true }));
    };
    socket.onclose = (event) => {
      status.textContent = "disconnected (" + event.code + ")";
      members.clear();
      showMembers();
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 2000);
    };
    socket.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      if (frame.members) {
        for (const member of frame.members) members.set(member.id, member);
        showMembers();
      } else if (frame.presence) {
        if (frame.presence.type === "join") members.set(frame.presence.member.id, frame.presence.member);
        else members.delete(frame.presence.member.id);
        showMembers();
      } else if (frame.subscribed) {
        const { recovered, reason } = frame.subscribed;
        if (!recovered && position) notice.textContent = "Some messages could not be recovered (" + reason + ").";
        advance(frame.subscribed.position);
        status.textContent = "connected";
      } else if (frame.error) {
        notice.textContent = "Not sent (" + frame.error + "): " + frame.text;
      } else if ("data" in frame) {
        const { text } = JSON.parse(frame.data);
        show(text);
        saved.texts.push(text);
        advance(frame.epoch === undefined ? null : { epoch: frame.epoch, offset: frame.offset });
      }
    };
  }
  connect();

  document.getElementById("form").onsubmit = (event) => {
    event.preventDefault();
    const input = document.getElementById("text");
    // Keep the text when the socket is not open, so nothing typed is lost.
    if (!input.value || socket.readyState !== WebSocket.OPEN) return;
    socket.send(input.value);
    input.value = "";
  };
</script>
</body>
</html>
`;
