/** The chat page served at `GET /`: a message list, a text input, and a script that joins a room. */
export const CHAT_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>wsport chat</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
  #messages { list-style: none; padding: 0; min-height: 10rem; border: 1px solid #ccc; }
  #messages li { padding: .25rem .5rem; border-bottom: 1px solid #eee; }
  #status { color: #666; }
</style>
</head>
<body>
<h1>Room <span id="room"></span></h1>
<p id="status">connecting…</p>
<ul id="messages"></ul>
<form id="form"><input id="text" autocomplete="off" placeholder="Say something" autofocus> <button>Send</button></form>
<script>
  const room = new URLSearchParams(location.search).get("room") || "lobby";
  document.getElementById("room").textContent = room;
  const status = document.getElementById("status");
  const list = document.getElementById("messages");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(scheme + "//" + location.host + "/rooms/" + encodeURIComponent(room));
  socket.onopen = () => { status.textContent = "connected"; };
  socket.onclose = (event) => { status.textContent = "disconnected (" + event.code + ")"; };
  socket.onmessage = (event) => {
    const { text } = JSON.parse(event.data);
    const item = document.createElement("li");
    item.textContent = text;
    list.append(item);
  };
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
