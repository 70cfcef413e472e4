// The /session Socket.IO connection: connect with credentials, call events with acks, surface refusals.
import { io } from "/vendor/socket.io/socket.io.esm.min.js";
import { ServerError } from "./errors.js";

const CONNECT_TIMEOUT_MS = 10000;
// Several nodes (docs/architecture.md, "Nodes"): the node that owns the session, as named by the join answer
// (`info.node`) or by a `wrong_node` refusal. The connection stays same-origin (cookies, CSP, the Origin check);
// `?node=<id>` lets the load balancer send it to that node (deploy/haproxy.cfg). Media goes to the node directly.
let sessionNode = null;

/** Remember the node that serves the session (`{id, url}` from POST /api/join's answer). */
export function useNode(node) {
  if (node && node.id) sessionNode = String(node.id);
}

/**
 * Connect to /session. Resolves with the socket once connected; rejects with a ServerError built from the
 * server's refusal (`connect_error` carries err.data = {code, message}). No automatic reconnection: a
 * reconnect needs fresh credentials (a new challenge), so callers reconnect themselves (party.js rejoin, with
 * `rejoinWait`). The server keeps a dropped participant's place and media for a grace period (30 s).
 */
export async function connectSession(auth, node) {
  useNode(node);
  try {
    return await connectOnce(auth);
  } catch (err) {
    // Staff credentials (the cookie) can be used again: follow the owner once. An invite's challenge is spent by
    // the refused attempt, so the caller's next join (a new challenge) goes to the remembered node.
    if (err.code === "wrong_node" && err.detail && err.detail.id) {
      useNode(err.detail);
      if (auth && auth.session !== undefined) return connectOnce(auth);
    }
    throw err;
  }
}

function connectOnce(auth) {
  return new Promise((resolve, reject) => {
    const socket = io("/session", {
      transports: ["websocket"],
      auth,
      reconnection: false,
      timeout: CONNECT_TIMEOUT_MS,
      query: sessionNode ? { node: sessionNode } : {},
    });
    const fail = (err) => {
      socket.off("connect", ok);
      socket.close();
      const data = err && err.data;
      reject(new ServerError(data && data.code ? data : { code: "network", message: (err && err.message) || "" }));
    };
    const ok = () => {
      socket.off("connect_error", fail);
      resolve(socket);
    };
    socket.once("connect", ok);
    socket.once("connect_error", fail);
  });
}

// Rejoin delays: the first attempt at once, then backing off (ms). A network that comes back ("online", or the
// browser's connection type changing: Wi-Fi -> 4G) ends the current wait early.
const REJOIN_DELAYS_MS = [0, 500, 1000, 2000, 4000, 8000];
const REJOIN_MAX_MS = 10000;

/** Wait before rejoin attempt `attempt` (0, 1, ...): 0 ms first, then 0.5, 1, 2, 4, 8, 10, 10 ... s (+/- 20 %). */
export function rejoinWait(attempt) {
  const base = attempt < REJOIN_DELAYS_MS.length ? REJOIN_DELAYS_MS[attempt] : REJOIN_MAX_MS;
  if (!base) return Promise.resolve();
  const ms = base * (0.8 + 0.4 * Math.random());
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      window.removeEventListener("online", done);
      onNetworkChange(done, true);
      resolve();
    };
    const timer = setTimeout(done, ms);
    window.addEventListener("online", done);
    onNetworkChange(done);
  });
}

/** Call `fn` when the browser reports a new network (Network Information API, where there is one). */
export function onNetworkChange(fn, remove = false) {
  const conn = navigator.connection;
  if (!conn || !conn.addEventListener) return;
  if (remove) conn.removeEventListener("change", fn);
  else conn.addEventListener("change", fn);
}

/** Emit an event and wait for its ack; resolves with the ack, rejects with ServerError when ok is false. */
export function call(socket, event, payload = {}, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    if (!socket || !socket.connected) {
      reject(new ServerError({ code: "not_connected", message: "not connected" }));
      return;
    }
    socket.timeout(timeoutMs).emit(event, payload, (err, ack) => {
      if (err) reject(new ServerError({ code: "timeout", message: "no answer from the server" }));
      else if (!ack || !ack.ok) reject(new ServerError(ack && ack.error));
      else resolve(ack);
    });
  });
}
