// Parley's web client: plain ES modules, no build step. It speaks only the
// public protocol (docs/protocol.md) over one WebSocket.
import { Connection, RequestError, socketUrl } from './connection.js';
import { sentenceFor } from './errors.js';

const TOKEN_KEY = 'parley.token';
const HISTORY_PAGE = 50;
const TYPING_SEND_INTERVAL_MS = 3000;
const TYPING_SHOW_MS = 5000;
// Backoff [base, cap] in ms per retried send error (protocol section 7).
const SEND_BACKOFF = { rate_limited: [250, 10000], unavailable: [1000, 60000], internal: [1000, 60000] };
// The session plugin's default max_message_length, in code points: a longer
// text is refused (too_large), so the composer keeps it for shortening.
const MAX_MESSAGE_CHARS = 4000;
// Presence counts only requests as activity: an open, visible page pings so
// its user stays online while reading (the server's offline_after is minutes).
const PING_INTERVAL_MS = 60000;

const $ = (id) => document.getElementById(id);

const state = {
  me: null, // {user_id, name}
  owner: null, // the user the model below belongs to; outlives a session that ended
  conversations: new Map(), // conversation id -> Conversation (see conversation())
  names: new Map(), // user_id -> name
  presence: new Map(), // user_id -> {online, last_active}
  presenceSubscribed: new Set(),
  features: { groups: true, presence: true },
  openId: null,
  outbox: new Map(), // client_msg_id -> {conversation, fields, text, failed}: in the order written, no ok yet
  sending: false, // a send of the outbox awaits its reply
  sendAttempt: 0, // retries since the outbox's last ok
  sendRetry: null, // the timer of the outbox's next retry
  syncing: false,
  syncedSeq: new Map(), // conversation -> highest seq from others in the login sync
  lastTypingSent: 0,
};

const connection = new Connection(socketUrl(window.location), {
  onOpen: () => resume(),
  onEvent: (event) => handleEvent(event),
  onState: (s) => showConnectionState(s),
});

// ---------- small helpers ----------

function storedToken() {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function storeToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Private modes may refuse storage: the session then lasts as long as the page.
  }
}

// Unsent messages survive a reload or a closed tab: they are kept per user
// and sent again, with their client_msg_id, after that user's next login (a
// message the server had stored already is not stored twice).
function outboxKey(userId) {
  return `parley.outbox.${userId}`;
}

function saveOutbox() {
  if (!state.owner) return;
  try {
    if (state.outbox.size === 0) localStorage.removeItem(outboxKey(state.owner));
    else localStorage.setItem(outboxKey(state.owner), JSON.stringify([...state.outbox]));
  } catch {
    // Storage refused or full: the outbox lasts as long as the page.
  }
}

function restoreOutbox(userId) {
  let saved = [];
  try {
    saved = JSON.parse(localStorage.getItem(outboxKey(userId)) || '[]');
  } catch {
    return;
  }
  for (const [clientMsgId, entry] of saved) {
    if (!state.outbox.has(clientMsgId)) state.outbox.set(clientMsgId, entry);
  }
}

function forgetOutbox(userId) {
  try {
    localStorage.removeItem(outboxKey(userId));
  } catch {
    // Nothing was stored.
  }
}

function newClientMessageId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

// The 1:1 conversation id: users compared as strings, not numbers.
function directConversationId(a, b) {
  return a < b ? `d:${a}:${b}` : `d:${b}:${a}`;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function showAlert(text) {
  const alert = $('alert');
  alert.textContent = text;
  alert.hidden = !text;
}

function announce(text) {
  $('announcer').textContent = text;
}

function reportError(error, overrides) {
  showAlert(sentenceFor(error, overrides));
}

function nameOf(userId) {
  if (state.me && userId === state.me.user_id) return 'You';
  return state.names.get(userId) || `User ${userId}`;
}

function formatTime(timestamp) {
  const date = new Date(timestamp);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function showConnectionState(s) {
  if (s !== 'open') delete document.body.dataset.synced;
  const banner = $('connection');
  if (s === 'closed' && state.me) {
    banner.textContent = 'Connection lost. Reconnecting…';
    banner.hidden = false;
  } else if (s === 'connecting' && state.me) {
    banner.textContent = 'Reconnecting…';
    banner.hidden = false;
  } else if (s === 'open') {
    banner.hidden = true;
  }
}

// ---------- the model ----------

function conversation(id) {
  let c = state.conversations.get(id);
  if (c) return c;
  const [kind, first, second] = id.split(':');
  c = {
    id,
    kind,
    peer: kind === 'd' ? (first === state.me.user_id ? second : first) : null,
    groupId: kind === 'g' ? first : null,
    groupName: null,
    members: [], // group: [{user_id, role}]
    left: false, // group: removed or left
    messages: new Map(), // message_id -> message
    lastMessage: null,
    unread: 0,
    readSeq: 0,
    peerReadSeq: 0, // 1:1
    peerDeliveredSeq: 0, // 1:1
    readers: new Map(), // group: user_id -> read seq
    deliverers: new Map(), // group: user_id -> delivered seq
    loaded: false,
    atStart: false,
    typing: new Map(), // user_id -> timer
    created: Date.now(),
  };
  state.conversations.set(id, c);
  if (c.peer) lookUpName(c.peer);
  if (c.groupId) refreshGroup(c);
  return c;
}

function lookUpName(userId) {
  if (state.names.has(userId)) return;
  state.names.set(userId, `User ${userId}`);
  connection
    .request('user.get', { user_id: userId })
    .then((reply) => {
      state.names.set(userId, reply.name);
      render();
    })
    .catch(() => state.names.delete(userId));
}

function refreshGroup(c) {
  if (!state.features.groups || c.left) return Promise.resolve();
  return connection
    .request('group.info', { group_id: c.groupId })
    .then((info) => {
      rememberGroupName(c, info.name);
      c.members = info.members;
      c.maxMembers = info.max_members;
      for (const m of info.members) lookUpName(m.user_id);
      subscribePresence(info.members.map((m) => m.user_id));
      render();
    })
    .catch((error) => {
      if (error.code === 'unsupported') state.features.groups = false;
      else if (error.code === 'forbidden' || error.code === 'not_found') c.left = true;
      render();
    });
}

// Group names are remembered on this device: a former member may no longer
// ask the server (group.info is for members).
function rememberGroupName(c, name) {
  c.groupName = name;
  try {
    localStorage.setItem(`parley.group.${c.groupId}`, name);
  } catch {
    // Storage refused: the name is known for this page only.
  }
}

function rememberedGroupName(c) {
  try {
    return localStorage.getItem(`parley.group.${c.groupId}`);
  } catch {
    return null;
  }
}

function titleOf(c) {
  if (c.kind === 'g') return c.groupName || rememberedGroupName(c) || `Group ${c.groupId}`;
  return nameOf(c.peer);
}

function sortedMessages(c) {
  return [...c.messages.values()].sort((a, b) => a.seq - b.seq);
}

function maxSeq(c) {
  let max = c.lastMessage ? c.lastMessage.seq : 0;
  for (const m of c.messages.values()) max = Math.max(max, m.seq);
  return max;
}

// Adds or updates one message; ids dedupe, seq orders.
function merge(c, message) {
  const known = c.messages.get(message.message_id);
  c.messages.set(message.message_id, known ? { ...known, ...message } : message);
  if (!c.lastMessage || message.seq >= c.lastMessage.seq) c.lastMessage = message;
  const mine = message.sender_id === state.me.user_id;
  if (!mine && typeof message.sender_id === 'string') lookUpName(message.sender_id);
  if (mine && c.kind === 'd') {
    if (message.status === 'read') c.peerReadSeq = Math.max(c.peerReadSeq, message.seq);
    if (message.status === 'delivered') c.peerDeliveredSeq = Math.max(c.peerDeliveredSeq, message.seq);
  }
  return !known;
}

function statusOf(c, message) {
  if (c.kind === 'd') {
    if (message.seq <= c.peerReadSeq) return { status: 'read', label: 'Read' };
    if (message.seq <= Math.max(c.peerDeliveredSeq, c.peerReadSeq)) {
      return { status: 'delivered', label: 'Delivered' };
    }
    return { status: 'sent', label: 'Sent' };
  }
  // A group: counted from receipts, or from history's status and read_by.
  const reached = (watermarks) =>
    [...watermarks].filter(([userId, seq]) => userId !== message.sender_id && seq >= message.seq).length;
  const readBy = Math.max(reached(c.readers), message.read_by || 0);
  const others = Math.max(0, c.members.length - 1);
  // Read implies delivered.
  const received = new Map(c.deliverers);
  for (const [userId, seq] of c.readers) received.set(userId, Math.max(received.get(userId) || 0, seq));
  let status = message.status || 'sent';
  if (others > 0 && readBy >= others) status = 'read';
  else if (status === 'sent' && others > 0 && reached(received) >= others) status = 'delivered';
  const label = readBy > 0 ? `Read by ${readBy}` : status === 'delivered' ? 'Delivered' : 'Sent';
  return { status, label, readBy };
}

function visible(c) {
  return state.openId === c.id && document.visibilityState === 'visible';
}

function highestFromOthers(c) {
  let seq = 0;
  for (const m of c.messages.values()) {
    if (m.sender_id !== state.me.user_id) seq = Math.max(seq, m.seq);
  }
  return seq;
}

function mark(c, status, seq) {
  if (seq < 1 || c.left) return;
  connection.request('mark', { conversation: c.id, status, seq }).catch((error) => {
    if (error.code !== 'disconnected' && error.code !== 'forbidden') reportError(error);
  });
}

function markReadIfVisible(c) {
  if (!visible(c)) return;
  const seq = Math.max(highestFromOthers(c), c.lastMessage ? c.lastMessage.seq : 0);
  if (seq > c.readSeq && (c.unread > 0 || highestFromOthers(c) > c.readSeq)) {
    c.readSeq = seq;
    mark(c, 'read', seq);
  }
  c.unread = 0;
}

// ---------- events ----------

function handleEvent(event) {
  if (!state.me) return;
  switch (event.type) {
    case 'message':
      onMessage(event);
      break;
    case 'receipt':
      onReceipt(event);
      break;
    case 'synced':
      onSynced();
      break;
    case 'session_ended':
      onSessionEnded(event.reason);
      break;
    case 'typing':
      onTyping(event);
      break;
    case 'presence':
      state.presence.set(event.user_id, { online: event.online, last_active: event.last_active });
      render();
      break;
    case 'group':
      onGroup(event);
      break;
    default:
      // Unknown events are ignored, as the protocol asks.
      break;
  }
}

function onMessage(message) {
  if (typeof message.conversation !== 'string' || typeof message.message_id !== 'string') return;
  const c = conversation(message.conversation);
  const previousMax = maxSeq(c);
  const fresh = merge(c, message);
  const fromOthers = message.sender_id !== state.me.user_id;
  if (message.eventType === 'system' && c.kind === 'g') refreshGroup(c);
  // The catch-up is marked after synced. Duplicates count too: a held message
  // comes again when its mark was lost, and at every login until marked.
  if (fromOthers && state.syncing) {
    state.syncedSeq.set(c.id, Math.max(state.syncedSeq.get(c.id) || 0, message.seq));
  }
  if (fresh && fromOthers) {
    stopTyping(c, message.sender_id);
    if (!state.syncing && visible(c)) {
      c.readSeq = Math.max(c.readSeq, message.seq);
      mark(c, 'read', message.seq);
    } else if (!state.syncing) {
      mark(c, 'delivered', message.seq);
    }
    if (!visible(c) && message.seq > c.readSeq) c.unread += 1;
    if (message.eventType !== 'system') {
      announce(`New message from ${nameOf(message.sender_id)} in ${titleOf(c)}: ${message.message}`);
    }
  }
  // A jump in seq means something was missed: history fills it.
  if (c.loaded && message.seq > previousMax + 1 && !state.syncing) {
    fillHistory(c).catch((error) => {
      if (error.code !== 'disconnected') reportError(error);
    });
  }
  if (c.kind === 'd' && fromOthers) subscribePresence([c.peer]);
  render();
}

function onReceipt(receipt) {
  const c = state.conversations.get(receipt.conversation);
  if (!c || typeof receipt.seq !== 'number') return;
  if (receipt.user_id === state.me.user_id) {
    // Another device of ours marked it.
    if (receipt.status === 'read') {
      c.readSeq = Math.max(c.readSeq, receipt.seq);
      if (c.lastMessage && c.readSeq >= c.lastMessage.seq) c.unread = 0;
    }
  } else if (c.kind === 'd') {
    if (receipt.status === 'read') c.peerReadSeq = Math.max(c.peerReadSeq, receipt.seq);
    else c.peerDeliveredSeq = Math.max(c.peerDeliveredSeq, receipt.seq);
  } else {
    const watermarks = receipt.status === 'read' ? c.readers : c.deliverers;
    watermarks.set(receipt.user_id, Math.max(watermarks.get(receipt.user_id) || 0, receipt.seq));
  }
  render();
}

function onTyping(event) {
  const c = state.conversations.get(event.conversation);
  if (!c || event.user_id === state.me.user_id) return;
  clearTimeout(c.typing.get(event.user_id));
  c.typing.set(
    event.user_id,
    setTimeout(() => stopTyping(c, event.user_id), TYPING_SHOW_MS),
  );
  renderTyping();
}

function stopTyping(c, userId) {
  if (!c.typing.has(userId)) return;
  clearTimeout(c.typing.get(userId));
  c.typing.delete(userId);
  renderTyping();
}

function onGroup(event) {
  if (typeof event.group_id !== 'string') return;
  const known = state.conversations.has(`g:${event.group_id}`);
  const c = conversation(`g:${event.group_id}`); // a new one fetches its group.info itself
  const aboutMe = Array.isArray(event.user_ids) && event.user_ids.includes(state.me.user_id);
  if (aboutMe && (event.change === 'removed' || event.change === 'left')) {
    c.left = true;
    c.members = [];
    if (event.change === 'removed') showAlert(`You were removed from ${titleOf(c)}.`);
  } else if (known) {
    if (aboutMe) c.left = false;
    refreshGroup(c);
  }
  render();
}

// ---------- (re)connection and sync ----------

function resume() {
  const token = storedToken();
  if (!token) {
    showAuth();
    return;
  }
  login({ token }).catch((error) => {
    if (error.code === 'unauthenticated') {
      leaveSession();
      showAlert('Your session has ended. Please log in again.');
    } else if (error.code !== 'disconnected') {
      // unavailable and friends: the next connection retries with backoff.
      connection.restart();
    }
  });
}

async function login(credentials) {
  state.syncing = true;
  state.syncedSeq.clear();
  let reply;
  try {
    reply = await connection.request('login', credentials);
  } catch (error) {
    state.syncing = false;
    throw error;
  }
  if (state.owner !== reply.user_id) resetModel();
  state.owner = reply.user_id;
  restoreOutbox(reply.user_id);
  state.me = { user_id: reply.user_id, name: reply.name };
  state.names.set(reply.user_id, reply.name);
  storeToken(reply.token);
  showApp();
  return reply;
}

function resetModel() {
  state.conversations.clear();
  state.presence.clear();
  state.presenceSubscribed.clear();
  state.outbox.clear();
  state.openId = null;
}

// Back to the login form without a session: the token is forgotten (the
// model and outbox are the caller's to keep or drop).
function leaveSession() {
  storeToken(null);
  state.me = null;
  delete document.body.dataset.synced;
  document.body.classList.remove('chat-open');
  showAuth();
}

// The server logged this connection out. The model and the outbox stay for
// the same user's next login: nothing written is lost.
function onSessionEnded(reason) {
  state.syncing = false;
  state.syncedSeq.clear();
  if (reason === 'unavailable') {
    // The login catch-up failed; the token still holds. Reconnecting goes
    // through the backoff, and the new connection logs in with the token.
    connection.restart();
    return;
  }
  leaveSession();
  showAlert(
    reason === 'expired'
      ? 'Your session has expired. Please log in again.'
      : 'You were logged out (in another tab or window). Please log in again.',
  );
  $('login-email').focus();
}

async function onSynced() {
  state.syncing = false;
  state.presenceSubscribed.clear();
  for (const [id, seq] of state.syncedSeq) {
    const c = state.conversations.get(id);
    if (c && visible(c)) {
      c.readSeq = Math.max(c.readSeq, seq);
      mark(c, 'read', seq);
    } else if (c) {
      mark(c, 'delivered', seq);
    }
  }
  state.syncedSeq.clear();
  // Closed conversations reload their history when next opened: what our
  // other devices sent meanwhile is not in the login sync.
  for (const c of state.conversations.values()) if (c.id !== state.openId) c.loaded = false;
  // The outbox first (protocol section 7, Resuming), and each step on its
  // own: one failing must not hold back the others.
  flushOutbox();
  const reportUnlessOffline = (error) => {
    if (error.code !== 'disconnected') reportError(error);
  };
  const open = state.openId && state.conversations.get(state.openId);
  await Promise.all([
    loadConversations().catch(reportUnlessOffline),
    loadGroups().catch(reportUnlessOffline),
    loadGroupPrivacy().catch(reportUnlessOffline),
    open && fillHistory(open).then(() => markReadIfVisible(open), reportUnlessOffline),
  ]);
  subscribePresence([...state.conversations.values()].filter((c) => c.peer).map((c) => c.peer));
  // Marks the page as caught up (tests and styles may wait for it).
  document.body.dataset.synced = 'true';
  render();
}

// All of the user's conversations, page by page (protocol section on
// conversations: a reply without next_cursor is the last).
async function loadConversations() {
  let cursor = null;
  do {
    const reply = await connection.request('conversations', cursor ? { cursor } : {});
    for (const entry of reply.conversations || []) {
      const c = conversation(entry.conversation);
      if (entry.last_message) merge(c, entry.last_message);
      c.unread = visible(c) ? 0 : entry.unread;
      c.readSeq = Math.max(c.readSeq, entry.read_seq || 0);
      if (c.kind === 'd') c.peerReadSeq = Math.max(c.peerReadSeq, entry.peer_read_seq || 0);
    }
    render();
    cursor = reply.next_cursor || null;
  } while (cursor);
}

async function loadGroups() {
  if (!state.features.groups) return;
  try {
    let cursor = null;
    do {
      const groups = await connection.request('group.list', cursor ? { cursor } : {});
      for (const g of groups.groups || []) {
        rememberGroupName(conversation(`g:${g.group_id}`), g.name);
      }
      cursor = groups.next_cursor || null;
    } while (cursor);
  } catch (error) {
    if (error.code === 'unsupported') state.features.groups = false;
    else throw error;
  }
  render();
}

// The latest page (or the page before `beforeSeq`), merged into what we hold;
// the lowest seq of the page (0 for an empty one).
async function loadHistory(c, beforeSeq) {
  const fields = { conversation: c.id, limit: HISTORY_PAGE };
  if (beforeSeq) fields.before_seq = beforeSeq;
  const reply = await connection.request('history', fields);
  const messages = reply.messages || [];
  for (const m of messages) merge(c, m);
  if (!beforeSeq) c.loaded = true;
  // seq has no gaps, but a page can be short without being the first: one cut
  // by the server's byte budget says `more`. Only seq 1 or an empty page is
  // the start.
  if (messages.length === 0 || messages.some((m) => m.seq === 1)) c.atStart = true;
  render();
  return messages.length > 0 ? Math.min(...messages.map((m) => m.seq)) : 0;
}

// The latest page, then earlier pages until they meet what we held before:
// more than one page may have been missed (offline, or sent from another
// device of ours), and a hole below the latest page would never be filled.
async function fillHistory(c) {
  const held = new Set([...c.messages.values()].map((m) => m.seq));
  let lowest = await loadHistory(c);
  while (lowest > 1 && !held.has(lowest - 1) && [...held].some((seq) => seq < lowest)) {
    lowest = await loadHistory(c, lowest);
  }
}

function subscribePresence(userIds) {
  if (!state.features.presence || !state.me) return;
  const wanted = [...new Set(userIds)].filter(
    (id) => id && id !== state.me.user_id && !state.presenceSubscribed.has(id),
  );
  if (wanted.length === 0) return;
  for (const id of wanted) state.presenceSubscribed.add(id);
  const apply = (reply) => {
    for (const p of reply.presence || []) {
      state.presence.set(p.user_id, { online: p.online, last_active: p.last_active });
    }
    render();
  };
  connection
    .request('presence.subscribe', { users: wanted })
    .then(apply)
    .catch((error) => {
      if (error.code === 'unsupported') {
        state.features.presence = false;
      } else if (error.code === 'forbidden' && wanted.length > 1) {
        // One user we may not see spoils the batch: ask one by one.
        for (const id of wanted) state.presenceSubscribed.delete(id);
        for (const id of wanted) {
          state.presenceSubscribed.add(id);
          connection
            .request('presence.subscribe', { users: [id] })
            .then(apply)
            .catch(() => state.presenceSubscribed.delete(id));
        }
      } else {
        // Not visible yet (no message exchanged): try again after the next message.
        for (const id of wanted) state.presenceSubscribed.delete(id);
      }
    });
}

// ---------- sending ----------

function sendMessage(c, text) {
  const clientMsgId = newClientMessageId();
  const fields =
    c.kind === 'd'
      ? { to: c.peer, message: text, client_msg_id: clientMsgId }
      : { group_id: c.groupId, message: text, client_msg_id: clientMsgId };
  state.outbox.set(clientMsgId, { conversation: c.id, fields, text });
  saveOutbox();
  render();
  flushOutbox();
}

// Sends the outbox one message at a time, in the order written, each with its
// own client_msg_id (a re-send is stored once). One at a time, because a send
// retried after later ones were stored would be stored after them (protocol
// section 3); one backoff for the whole outbox, for the same reason.
function flushOutbox() {
  if (state.sending || state.sendRetry !== null || state.syncing || !state.me || !connection.connected) return;
  const next = [...state.outbox].find(([, entry]) => !entry.failed);
  if (!next) return;
  const [clientMsgId, entry] = next;
  state.sending = true;
  connection
    .request('send', entry.fields)
    .then((reply) => {
      state.sending = false;
      state.sendAttempt = 0;
      // Logged out meanwhile: the outbox was emptied with the model.
      if (!state.outbox.delete(clientMsgId)) return;
      saveOutbox();
      const c = conversation(reply.conversation);
      merge(c, {
        type: 'message',
        message_id: reply.message_id,
        conversation: reply.conversation,
        seq: reply.seq,
        sender_id: state.me.user_id,
        recipient_id: entry.fields.to,
        group_id: entry.fields.group_id,
        message: entry.text,
        status: 'sent',
        eventType: 'user',
        timestamp: reply.timestamp,
      });
      if (c.kind === 'd') subscribePresence([c.peer]);
      render();
      flushOutbox();
    })
    .catch((error) => {
      state.sending = false;
      // Sent again after the next login (a session_ended precedes unauthenticated).
      if (error.code === 'disconnected' || error.code === 'unauthenticated') return;
      const backoff = SEND_BACKOFF[error.code];
      if (backoff) {
        if (state.sendAttempt === 0) reportError(error);
        const [base, cap] = backoff;
        const delay = Math.random() * Math.min(cap, base * 2 ** state.sendAttempt);
        state.sendAttempt += 1;
        state.sendRetry = setTimeout(() => {
          state.sendRetry = null;
          flushOutbox();
        }, delay);
        return;
      }
      entry.failed = sentenceFor(error, { not_found: 'That person no longer exists.' });
      saveOutbox();
      showAlert(entry.failed);
      render();
      flushOutbox();
    });
}

// ---------- views ----------

function showAuth() {
  $('auth').hidden = false;
  $('app').hidden = true;
  $('connection').hidden = true;
}

function showApp() {
  $('auth').hidden = true;
  $('app').hidden = false;
  $('me-name').textContent = state.me.name;
  showAlert('');
  render();
}

function openConversation(id) {
  state.openId = id;
  const c = conversation(id);
  document.body.classList.add('chat-open');
  $('group-panel').hidden = true;
  $('manage-group').setAttribute('aria-expanded', 'false');
  render({ scrollToEnd: true });
  $('chat-title').focus();
  const ready = c.loaded ? Promise.resolve() : fillHistory(c);
  ready
    .then(() => {
      markReadIfVisible(c);
      render({ scrollToEnd: true });
    })
    .catch((error) => {
      if (error.code !== 'disconnected') reportError(error);
    });
}

function presenceDot(userId, node) {
  const p = state.presence.get(userId);
  node.hidden = !p;
  if (!p) return node;
  node.className = `dot ${p.online ? 'online' : 'offline'}`;
  node.dataset.online = String(p.online);
  node.setAttribute('role', 'img');
  node.setAttribute('aria-label', p.online ? 'online' : 'offline');
  node.title = p.online ? 'Online' : p.last_active ? `Last seen ${new Date(p.last_active).toLocaleString()}` : 'Offline';
  return node;
}

function render(options = {}) {
  if (!state.me) return;
  renderList();
  renderChat(options);
  const g = state.features.groups;
  $('new-group').hidden = !g;
}

function renderList() {
  const list = $('conversation-list');
  const items = [...state.conversations.values()].sort((a, b) => {
    const ta = a.lastMessage ? Date.parse(a.lastMessage.timestamp) : a.created;
    const tb = b.lastMessage ? Date.parse(b.lastMessage.timestamp) : b.created;
    return tb - ta;
  });
  const focusedId = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.conversation
    : undefined;
  list.replaceChildren(
    ...items.map((c) => {
      const preview = c.lastMessage
        ? `${c.kind === 'g' && c.lastMessage.eventType !== 'system' ? `${nameOf(c.lastMessage.sender_id)}: ` : ''}${c.lastMessage.message}`
        : 'No messages yet';
      const dot = c.peer ? presenceDot(c.peer, el('span', { class: 'dot' })) : null;
      const unread = c.unread > 0
        ? el('span', { class: 'unread', 'aria-label': `${c.unread} unread`, text: String(c.unread) })
        : null;
      return el(
        'li',
        {},
        el(
          'button',
          {
            type: 'button',
            class: 'conversation',
            'data-conversation': c.id,
            'aria-current': state.openId === c.id ? 'true' : null,
            onclick: () => openConversation(c.id),
          },
          dot,
          el('span', { class: 'title', text: titleOf(c) }),
          unread,
          el('span', { class: 'preview', text: preview }),
        ),
      );
    }),
  );
  if (focusedId) {
    const again = list.querySelector(`[data-conversation="${CSS.escape(focusedId)}"]`);
    if (again) again.focus();
  }
  $('no-conversations').hidden = items.length > 0;
}

function renderChat({ scrollToEnd = false, keepFromBottom = null } = {}) {
  const c = state.openId && state.conversations.get(state.openId);
  $('chat').hidden = !c;
  $('empty').hidden = Boolean(c);
  if (!c) return;
  $('chat-title').textContent = titleOf(c);
  presenceDot(c.peer, $('chat-presence'));
  if (!c.peer) $('chat-presence').hidden = true;
  $('manage-group').hidden = c.kind !== 'g' || c.left;
  $('composer').hidden = c.left;
  $('composer-closed').hidden = !c.left;
  $('load-earlier').hidden = !c.loaded || c.atStart || c.messages.size === 0;

  const scroller = $('messages-scroll');
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
  const fromBottom = keepFromBottom ?? scroller.scrollHeight - scroller.scrollTop;

  const rows = sortedMessages(c).map((m) => messageRow(c, m));
  for (const [clientMsgId, entry] of state.outbox) {
    if (entry.conversation !== c.id) continue;
    rows.push(entry.failed ? failedRow(clientMsgId, entry) : el(
      'li',
      { class: 'message own pending' },
      el('p', { class: 'text', text: entry.text }),
      el('span', { class: 'meta' }, el('span', { class: 'tick', 'data-status': 'sending', text: 'Sending…' })),
    ));
  }
  $('messages').replaceChildren(...rows);
  if (scrollToEnd || atBottom) scroller.scrollTop = scroller.scrollHeight;
  else scroller.scrollTop = scroller.scrollHeight - fromBottom;
  renderTyping();
  renderGroupPanel(c);
}

// A send the server refused for good stays visible with its text until the
// user takes it back into the composer.
function failedRow(clientMsgId, entry) {
  return el(
    'li',
    { class: 'message own failed' },
    el('p', { class: 'text', text: entry.text }),
    el(
      'span',
      { class: 'meta' },
      el('span', { class: 'tick', 'data-status': 'failed', text: `Not sent: ${entry.failed}` }),
      ' ',
      el('button', { type: 'button', class: 'edit', text: 'Edit', onclick: () => editFailed(clientMsgId) }),
    ),
  );
}

function editFailed(clientMsgId) {
  const entry = state.outbox.get(clientMsgId);
  if (!entry) return;
  state.outbox.delete(clientMsgId);
  saveOutbox();
  const input = $('composer-input');
  input.value = input.value.trim() ? `${entry.text}\n${input.value}` : entry.text;
  render();
  input.focus();
}

function messageRow(c, m) {
  if (m.eventType === 'system') {
    return el('li', { class: 'message system', 'data-message-id': m.message_id, 'data-seq': m.seq }, el('p', { class: 'text', text: m.message }));
  }
  const mine = m.sender_id === state.me.user_id;
  const time = el('time', { datetime: m.timestamp, text: formatTime(m.timestamp) });
  let tick = null;
  if (mine) {
    const s = statusOf(c, m);
    const symbol = c.kind === 'g' && s.readBy > 0 ? s.label : s.status === 'sent' ? '✓' : '✓✓';
    tick = el('span', {
      class: `tick ${s.status}`,
      'data-status': s.status,
      'data-read-by': c.kind === 'g' ? String(s.readBy) : null,
      'aria-label': s.label,
      title: s.label,
      text: symbol,
    });
  }
  return el(
    'li',
    { class: `message ${mine ? 'own' : 'theirs'}`, 'data-message-id': m.message_id, 'data-seq': m.seq },
    c.kind === 'g' && !mine ? el('span', { class: 'sender', text: nameOf(m.sender_id) }) : null,
    el('p', { class: 'text', text: m.message }),
    el('span', { class: 'meta' }, time, tick ? ' ' : null, tick),
  );
}

function renderTyping() {
  const c = state.openId && state.conversations.get(state.openId);
  const typers = c ? [...c.typing.keys()].map(nameOf) : [];
  const text = typers.length === 0 ? '' : typers.length === 1 ? `${typers[0]} is typing…` : `${typers.join(', ')} are typing…`;
  if ($('typing').textContent !== text) $('typing').textContent = text;
}

function myRole(c) {
  const me = c.members.find((m) => m.user_id === state.me.user_id);
  return me ? me.role : null;
}

function renderGroupPanel(c) {
  const panel = $('group-panel');
  if (c.kind !== 'g' || c.left) {
    panel.hidden = true;
    return;
  }
  const role = myRole(c);
  const canManage = role === 'owner' || role === 'admin';
  $('add-member-form').hidden = !canManage;
  // Re-rendering replaces the controls: keep the keyboard where it was.
  const active = document.activeElement;
  const focusedRow = active && active.closest ? active.closest('#member-list li') : null;
  const focusedTag = focusedRow ? active.tagName.toLowerCase() : null;
  $('member-list').replaceChildren(
    ...c.members.map((m) => {
      const isMe = m.user_id === state.me.user_id;
      const row = el(
        'li',
        { 'data-user-id': m.user_id },
        c.kind === 'g' ? presenceDot(m.user_id, el('span', { class: 'dot' })) : null,
        el('span', { class: 'member-name', text: isMe ? `${state.me.name} (you)` : nameOf(m.user_id) }),
      );
      if (role === 'owner' && m.role !== 'owner') {
        const id = `role-${m.user_id}`;
        row.append(
          el('label', { for: id, class: 'visually-hidden', text: `Role of ${nameOf(m.user_id)}` }),
          el(
            'select',
            {
              id,
              onchange: (e) => changeRole(c, m.user_id, e.target.value),
            },
            el('option', { value: 'member', selected: m.role === 'member', text: 'member' }),
            el('option', { value: 'admin', selected: m.role === 'admin', text: 'admin' }),
          ),
        );
      } else {
        row.append(el('span', { class: 'role', text: m.role }));
      }
      const removable = !isMe && m.role !== 'owner' && (role === 'owner' || (role === 'admin' && m.role === 'member'));
      if (removable) {
        row.append(
          el('button', {
            type: 'button',
            class: 'danger',
            'aria-label': `Remove ${nameOf(m.user_id)}`,
            text: 'Remove',
            onclick: () => removeMember(c, m.user_id),
          }),
        );
      }
      return row;
    }),
  );
  if (focusedRow) {
    const again = $('member-list').querySelector(
      `li[data-user-id="${CSS.escape(focusedRow.dataset.userId)}"] ${focusedTag}`,
    );
    (again || $('manage-group')).focus();
  }
}

// ---------- group actions ----------

function groupAction(c, type, fields, overrides) {
  return connection
    .request(type, { group_id: c.groupId, ...fields })
    .then(() => refreshGroup(c))
    .catch((error) => reportError(error, overrides));
}

function changeRole(c, userId, role) {
  groupAction(c, 'group.role', { user_id: userId, role });
}

function removeMember(c, userId) {
  groupAction(c, 'group.remove', { members: [userId] });
}

async function findUsers(emails) {
  const ids = [];
  for (const email of emails) {
    try {
      const user = await connection.request('user.find', { email });
      state.names.set(user.user_id, user.name);
      ids.push(user.user_id);
    } catch (error) {
      if (error.code === 'not_found') throw new RequestError('not_found', `No user has the email ${email}.`);
      throw error;
    }
  }
  return ids;
}

function splitEmails(text) {
  return text.split(/[\s,;]+/).map((e) => e.trim()).filter(Boolean);
}

// ---------- wiring ----------

function formHandler(form, handler) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      showAlert('');
      await handler(form);
    } finally {
      button.disabled = false;
    }
  });
}

formHandler($('login-form'), async () => {
  try {
    await login({ email: $('login-email').value.trim(), password: $('login-password').value });
    $('login-password').value = '';
  } catch (error) {
    reportError(error, { unauthenticated: 'Wrong email or password.' });
  }
});

formHandler($('register-form'), async () => {
  const email = $('register-email').value.trim();
  const password = $('register-password').value;
  try {
    await connection.request('register', { name: $('register-name').value.trim(), email, password });
    await login({ email, password });
    $('register-password').value = '';
  } catch (error) {
    reportError(error, { bad_request: 'Please fill in a name, a valid email and a password.' });
  }
});

$('logout').addEventListener('click', async () => {
  try {
    await connection.request('logout');
  } catch {
    // Logged out locally in any case; the token is forgotten below.
  }
  // Logging out on purpose takes the unsent messages along: the next person
  // at this browser must not find them.
  if (state.owner) forgetOutbox(state.owner);
  resetModel();
  state.owner = null;
  state.names.clear();
  leaveSession();
  $('login-email').focus();
});

formHandler($('find-form'), async () => {
  const email = $('find-email').value.trim();
  try {
    const user = await connection.request('user.find', { email });
    if (user.user_id === state.me.user_id) {
      showAlert('That is your own email. Enter someone else’s.');
      return;
    }
    state.names.set(user.user_id, user.name);
    $('find-email').value = '';
    openConversation(directConversationId(state.me.user_id, user.user_id));
  } catch (error) {
    reportError(error, { not_found: `No user has the email ${email}.`, too_large: 'That email is too long.' });
  }
});

// The server's caps on groups: too_large is someone in as many groups as
// one may be, rate_limited too many groups created this hour.
const GROUP_LIMITS = {
  too_large: 'You, or someone you named, are already in as many groups as one may be.',
  rate_limited: 'You have created many groups lately. Try again later.',
};

function groupChangeRefused(error) {
  if (error.code === 'not_found' && error.message) return error.message;
  if (error.code === 'forbidden' && error.reason === 'adds_restricted') {
    return 'Someone you named lets only people they have written to add them to groups.';
  }
  return sentenceFor(error, GROUP_LIMITS);
}

// Who may add me to groups (group.privacy, an extension): read after each
// login, set from the checkbox. A server without it hides the checkbox.
// `privacyChanges` counts the user's clicks: a read sent before one is stale.
let privacyChanges = 0;
let privacyConfirmed = 'anyone'; // what the server last said it holds

function showPrivacy(adds) {
  privacyConfirmed = adds;
  $('adds-contacts').checked = adds === 'contacts';
  // What the server holds now (tests wait for it).
  $('adds-contacts').dataset.saved = adds;
}

async function loadGroupPrivacy() {
  if (!state.features.groups) return;
  const changesBefore = privacyChanges;
  try {
    const reply = await connection.request('group.privacy', {});
    $('adds-contacts').parentElement.hidden = false;
    if (privacyChanges === changesBefore) showPrivacy(reply.adds);
  } catch (error) {
    if (error.code === 'unsupported') $('adds-contacts').parentElement.hidden = true;
    else throw error;
  }
}

$('adds-contacts').addEventListener('change', () => {
  const box = $('adds-contacts');
  const change = ++privacyChanges;
  delete box.dataset.saved;
  connection
    .request('group.privacy', { adds: box.checked ? 'contacts' : 'anyone' })
    .then((reply) => {
      if (change === privacyChanges) showPrivacy(reply.adds);
    })
    .catch((error) => {
      // Back to what the server holds, unless a later click superseded this one.
      if (change === privacyChanges) showPrivacy(privacyConfirmed);
      reportError(error);
    });
});

formHandler($('group-form'), async () => {
  try {
    const members = await findUsers(splitEmails($('group-emails').value));
    const reply = await connection.request('group.create', { name: $('group-name').value.trim(), members });
    $('group-name').value = '';
    $('group-emails').value = '';
    $('new-group').open = false;
    const c = conversation(`g:${reply.group_id}`);
    await refreshGroup(c);
    openConversation(c.id);
  } catch (error) {
    showAlert(groupChangeRefused(error));
  }
});

formHandler($('add-member-form'), async () => {
  const c = state.conversations.get(state.openId);
  try {
    const members = await findUsers(splitEmails($('add-member-email').value));
    await connection.request('group.add', { group_id: c.groupId, members });
    $('add-member-email').value = '';
    await refreshGroup(c);
  } catch (error) {
    showAlert(groupChangeRefused(error));
  }
});

$('leave-group').addEventListener('click', () => {
  const c = state.conversations.get(state.openId);
  connection
    .request('group.leave', { group_id: c.groupId })
    .then(() => {
      c.left = true;
      render();
    })
    .catch((error) => reportError(error));
});

$('manage-group').addEventListener('click', () => {
  const panel = $('group-panel');
  panel.hidden = !panel.hidden;
  $('manage-group').setAttribute('aria-expanded', String(!panel.hidden));
  const c = state.conversations.get(state.openId);
  if (!panel.hidden && c) refreshGroup(c);
});

$('back').addEventListener('click', () => {
  document.body.classList.remove('chat-open');
  const id = state.openId;
  state.openId = null;
  render();
  const button = document.querySelector(`[data-conversation="${CSS.escape(id)}"]`);
  if (button) button.focus();
});

$('load-earlier').addEventListener('click', () => {
  const c = state.conversations.get(state.openId);
  const oldest = sortedMessages(c)[0];
  if (!oldest) return;
  const scroller = $('messages-scroll');
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  loadHistory(c, oldest.seq)
    .then(() => renderChat({ keepFromBottom: fromBottom }))
    .catch((error) => reportError(error));
});

formHandler($('composer'), async () => {
  const input = $('composer-input');
  const text = input.value.trim();
  const c = state.conversations.get(state.openId);
  if (!text || !c) return;
  const length = [...text].length;
  if (length > MAX_MESSAGE_CHARS) {
    showAlert(`That message is ${length} characters long; the limit is ${MAX_MESSAGE_CHARS}. Please shorten it.`);
    return;
  }
  input.value = '';
  sendMessage(c, text);
  input.focus();
});

// Enter sends, Shift+Enter starts a new line.
$('composer-input').addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $('composer').requestSubmit();
  }
});

$('composer-input').addEventListener('input', () => {
  const c = state.conversations.get(state.openId);
  const now = Date.now();
  if (!c || c.left || now - state.lastTypingSent < TYPING_SEND_INTERVAL_MS) return;
  state.lastTypingSent = now;
  connection.request('typing', { conversation: c.id }).catch(() => {});
});

// Back from a sleep or a network change, the socket may be dead without
// knowing it: a ping finds out (the connection ends it if nothing answers).
function probeConnection() {
  if (state.me && connection.connected) connection.request('ping').catch(() => {});
}
window.addEventListener('online', probeConnection);

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') probeConnection();
  const c = state.openId && state.conversations.get(state.openId);
  if (c && state.me) {
    markReadIfVisible(c);
    render();
  }
});

setInterval(() => {
  if (document.visibilityState === 'visible') probeConnection();
}, PING_INTERVAL_MS);

// Without a stored token the login form can show before the socket opens.
if (!storedToken()) showAuth();
connection.start();
