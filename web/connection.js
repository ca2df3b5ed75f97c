// One WebSocket to the server speaking Parley's protocol: requests matched to
// replies by id, events handed to a listener, and reconnection with
// exponential backoff and jitter. What to do after (re)connecting is the
// app's business (onOpen).

export class RequestError extends Error {
  constructor(code, message, reason) {
    super(message || code);
    this.code = code;
    // The error's `reason`, where the server gives one (too_large, forbidden).
    this.reason = reason;
  }
}

// The protocol's suggestion for reconnects (section 7, Backing off).
const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 60000;
// Only a connection that stayed up this long starts the backoff again: a
// server that closes right after the login would otherwise be hit in a tight
// loop.
const STABLE_MS = 10000;
// A socket whose peer is gone without a word (a laptop that slept, a network
// that changed under it) stays OPEN until TCP gives up, many minutes later.
// A request that hears nothing at all back from the server for this long
// ends the connection here, and the reconnect (with the outbox) takes over.
// A live server answers each request within its database timeout (10 s by
// default), so while a request waits it is never this silent: some reply
// comes out, even if it is `unavailable`. (The server's WebSocket pings are
// answered by the browser and never reach this code.)
const SILENCE_LIMIT_MS = 20000;
// server.max_frame_bytes' default: a bigger frame makes the server close the
// connection (1009) without a reply, and a re-send would close it again.
const MAX_FRAME_BYTES = 65536;

export function socketUrl(location) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

export class Connection {
  constructor(url, { onOpen, onEvent, onState }) {
    this.url = url;
    this.onOpen = onOpen;
    this.onEvent = onEvent;
    this.onState = onState;
    this.nextId = 1;
    this.waiting = new Map();  // request id -> {resolve, reject}
    this.attempt = 0;
    this.socket = null;
    this.framesHeard = 0; // frames received on the current socket
    this.timer = null;
    this.stableTimer = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.stableTimer);
    if (this.socket) this.socket.close(1000);
    this.socket = null;
  }

  get connected() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  open() {
    this.onState('connecting');
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.framesHeard = 0;
      this.stableTimer = setTimeout(() => {
        this.attempt = 0;
      }, STABLE_MS);
      this.onState('open');
      this.onOpen();
    };
    socket.onmessage = (event) => {
      this.framesHeard += 1;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame === null || typeof frame !== 'object') return;
      if (typeof frame.re === 'string' && this.waiting.has(frame.re)) {
        const { resolve, reject } = this.waiting.get(frame.re);
        this.waiting.delete(frame.re);
        if (frame.type === 'ok') resolve(frame);
        else reject(new RequestError(frame.code || 'internal', frame.message, frame.reason));
        return;
      }
      if (frame.re === undefined) this.onEvent(frame);
    };
    socket.onclose = () => this.lost(socket);
  }

  lost(socket) {
    if (this.socket !== socket) return;
    clearTimeout(this.stableTimer);
    this.socket = null;
    for (const { reject } of this.waiting.values()) reject(new RequestError('disconnected'));
    this.waiting.clear();
    if (this.stopped) return;
    this.onState('closed');
    this.scheduleReconnect();
  }

  // Called SILENCE_LIMIT_MS after a request went out on `socket`.
  checkHeardSince(socket, framesBefore) {
    if (this.socket !== socket || this.framesHeard > framesBefore || this.waiting.size === 0) return;
    this.lost(socket);
    // The close handshake cannot complete on a dead link; its onclose, if it
    // ever comes, finds the socket already replaced.
    socket.close(4001);
  }

  scheduleReconnect() {
    // Full jitter keeps a crowd of clients from coming back in step after an outage.
    const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    const delay = Math.random() * ceiling;
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (!this.stopped) this.open();
    }, delay);
  }

  // Resolves with the `ok` frame; rejects with a RequestError.
  request(type, fields = {}) {
    if (!this.connected) return Promise.reject(new RequestError('disconnected'));
    const id = String(this.nextId++);
    const frame = JSON.stringify({ ...fields, type, id });
    if (new TextEncoder().encode(frame).length > MAX_FRAME_BYTES) {
      return Promise.reject(new RequestError('too_large'));
    }
    const socket = this.socket;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      socket.send(frame);
      const framesBefore = this.framesHeard;
      setTimeout(() => this.checkHeardSince(socket, framesBefore), SILENCE_LIMIT_MS);
    });
  }

  // A connection that misbehaves (e.g. the login failed for a reason worth
  // retrying) is closed and reopened through the backoff.
  restart() {
    if (this.socket) this.socket.close(4000);
  }
}
