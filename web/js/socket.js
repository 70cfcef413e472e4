// The /session Socket.IO connection: connect with credentials, call events with acks, surface refusals.
import { io } from "/vendor/socket.io/socket.io.esm.min.js";
import { ServerError } from "./errors.js";

const CONNECT_TIMEOUT_MS = 10000;

/**
 * Connect to /session. Resolves with the socket once connected; rejects with a ServerError built from the
 * server's refusal (`connect_error` carries err.data = {code, message}). No automatic reconnection: a
 * reconnect needs fresh credentials (a new challenge), so callers reconnect themselves (party.js rejoin).
 */
export function connectSession(auth) {
  return new Promise((resolve, reject) => {
    const socket = io("/session", {
      transports: ["websocket"],
      auth,
      reconnection: false,
      timeout: CONNECT_TIMEOUT_MS,
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
