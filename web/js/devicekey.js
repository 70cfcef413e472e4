// The device key that binds an invite link to this browser (R17, issue 2 item 6).
// A NON-EXTRACTABLE WebCrypto ECDSA P-256 key pair, kept in IndexedDB under a hash of the invite token
// (the token itself is never stored). The private key cannot leave the browser; only the SPKI public key is sent.
import { ServerError } from "./errors.js";

const DB_NAME = "onedoor";
const STORE = "device-keys";
const ALG = { name: "ECDSA", namedCurve: "P-256" };

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function idb(mode, fn) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)));

async function hex(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function requireCrypto() {
  if (!window.isSecureContext || !window.crypto || !crypto.subtle || !window.indexedDB) {
    throw new ServerError({ code: "insecure_context", message: "WebCrypto or IndexedDB unavailable" });
  }
}

/** The key pair for this invite: reused from IndexedDB, or created (non-extractable) and stored. */
export async function deviceKeyFor(token) {
  requireCrypto();
  const id = "invite:" + (await hex("onedoor-invite:" + token));
  let rec = await idb("readonly", (s) => s.get(id));
  if (!rec || !rec.privateKey) {
    const pair = await crypto.subtle.generateKey(ALG, false, ["sign", "verify"]);
    const spki = b64(await crypto.subtle.exportKey("spki", pair.publicKey));
    rec = { privateKey: pair.privateKey, publicKey: pair.publicKey, spki, created: Date.now() };
    await idb("readwrite", (s) => s.put(rec, id));
  }
  return rec;
}

/** The exact bytes the server verifies: canonical JSON {"challenge": c, "type": "onedoor-join"} (sorted keys). */
export function joinMessage(challenge) {
  return new TextEncoder().encode(JSON.stringify({ challenge, type: "onedoor-join" }));
}

/** Sign a join challenge: raw r||s (IEEE P1363, what WebCrypto produces), base64. */
export async function signChallenge(key, challenge) {
  const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.privateKey, joinMessage(challenge));
  return b64(sig);
}

/** Sign arbitrary bytes given as base64 (agreement and application payloads, R17); returns raw r||s base64. */
export async function signPayload(key, payloadB64) {
  const bytes = Uint8Array.from(atob(payloadB64), (ch) => ch.charCodeAt(0));
  const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.privateKey, bytes);
  return b64(sig);
}
