// Herald's web client: the page. Everything that speaks the protocol —
// the socket, authentication, reconnecting, following the update log with
// every gap filled — is the Go SDK compiled to WebAssembly (herald.wasm,
// reached as globalThis.herald). This module only keeps what is on screen
// in step with the events it delivers. It builds the DOM with textContent
// and never with HTML strings, so no message text can become markup.

import { formatSize, formatCount, formatPreview, formatCall } from './format.js';
import { initCalls, onCallEvent } from './calls.js';
import { icon, fillIcons } from './icons.js';
import { richText } from './rich.js';
import { parseMarkdown, wrapSelection } from './markdown.js';

const SESSION_KEY = 'herald.session';

// Ids and times are int64 on the wire; protobuf JSON writes them as
// strings. These keys are turned back into numbers (all stay below 2^53).
// random_id is left a string: it uses 63 bits.
const INT_KEYS = new Set([
  'id', 'chat_id', 'from_id', 'sent_at', 'edited_at', 'reply_to', 'pts', 'chat_pts',
  'max_id', 'user_id', 'expires_at', 'ttl_ms', 'last_id', 'member_count', 'views',
  'unread', 'read_id', 'peer_read_id', 'at', 'created_at', 'last_seen', 'mute_until', 'device_id', 'unread_mentions', 'count',
]);
// A file's id is 32 hex digits, not a number: objects with a sha256 are
// files (and secret messages' ids are random strings), and keep theirs.
const parse = (text) => JSON.parse(text, function revive(k, v) {
  if (INT_KEYS.has(k) && typeof v === 'string' && /^-?\d+$/.test(v) && !('sha256' in this)) return Number(v);
  if (k === 'ids' && Array.isArray(v)) return v.map(Number);
  return v;
});

const $ = (id) => document.getElementById(id);
// iconSpan is a span of class cls holding the named icon, hidden from
// assistive technology (callers that mean something give it a label).
function iconSpan(cls, name) {
  const s = el('span', cls);
  s.setAttribute('aria-hidden', 'true');
  s.append(icon(name));
  return s;
}
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// The engine starts downloading at once, while the page shows itself.
const engine = (async () => {
  const go = new Go();
  const ready = new Promise((resolve) => { globalThis.heraldReady = resolve; });
  // loader.js started compiling it as soon as the page's head was read
  // (this is the same, should app.js run first). The server names the
  // engine by its content in the preload link.
  const link = document.querySelector('link[rel="preload"][as="fetch"]');
  const module = await (globalThis.heraldModule ||= WebAssembly.compileStreaming(fetch(link ? link.getAttribute('href') : 'herald.wasm')));
  performance.mark('herald-compiled');
  go.run(await WebAssembly.instantiate(module, go.importObject));
  await ready;
  performance.mark('herald-ready');
  return globalThis.herald;
})();

async function call(method, params = {}) {
  const h = await engine;
  return parse(await h.call(method, JSON.stringify(params)));
}

// ---- state -------------------------------------------------------------

const state = {
  me: null,              // {id, username, display_name}
  chats: new Map(),      // chat id → {chat, last, unread, read_id, peer_read_id}
  open: null,            // {id} of an open chat, or {draft: username}
  preview: null,         // a public channel being previewed: its Chat
  msgs: new Map(),       // id → message, for the open chat
  oldest: 0,             // smallest id loaded in the open chat
  complete: false,       // no older history
  loading: false,
  pending: new Map(),    // random_id → {chat_id, text, el}
  pins: [],              // the open chat's pinned messages, newest pin first
  reactionSet: ['👍', '👎', '❤️', '🔥', '🎉', '😂', '😮', '😢', '🙏', '👀'], // replaced by the server's
  typing: new Map(),     // chat id → Map(username → expiry ms)
  reply: null,           // message being replied to
  editing: null,         // message being edited
  lastTyping: 0,
  conn: 'connecting',
  secrets: new Map(),    // secret chats, username → {peer_id, username, chat_id, last, unread}
  upload: null,          // the file being uploaded: {file, caption, peer}
  chatsNext: null,       // where the next page of the chat list starts (null: no more)
  chatsWanted: 0,        // how many chats to keep loaded when the list reloads
  chatsMore: null,       // the page being loaded on scroll
};

// ---- session storage -----------------------------------------------------

// The token lives in localStorage: it must survive a reload, it is a
// short string read once at start, and IndexedDB would add an async API
// without protecting it any better (both are readable by script on this
// origin, which is why the Content-Security-Policy admits no script but
// this server's own). It never goes into a URL: the engine sends it inside
// the WebSocket as auth.resume.
function saveSession(token, user) {
  localStorage.setItem(SESSION_KEY, JSON.stringify({ token, user_id: user.id, username: user.username }));
}
function loadSession() {
  try { return JSON.parse(localStorage.getItem(SESSION_KEY) || 'null'); } catch { return null; }
}

// wipe forgets everything this origin kept: the token, any other
// storage, and every IndexedDB database (where secret-chat keys will live).
async function wipe() {
  localStorage.clear();
  sessionStorage.clear();
  if (indexedDB.databases) {
    for (const db of await indexedDB.databases()) {
      if (db.name) indexedDB.deleteDatabase(db.name);
    }
  }
  if (globalThis.caches) {
    for (const k of await caches.keys()) await caches.delete(k);
  }
  // The server deleted this device's push subscription with the device;
  // the browser's own goes too, so nothing arrives for the next person.
  try {
    const sub = await currentSubscription();
    if (sub) await sub.unsubscribe();
  } catch { /* none */ }
}

// Another tab logging out logs this one out too.
window.addEventListener('storage', (e) => {
  if ((e.key === SESSION_KEY || e.key === null) && !localStorage.getItem(SESSION_KEY) && state.me) {
    location.replace('/');
  }
});

// ---- formatting ----------------------------------------------------------

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
function shortTime(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  return new Date().toDateString() === d.toDateString() ? timeFmt.format(d) : dayFmt.format(d);
}
function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${Math.round(s / 3600)} h`;
  if (s < 30 * 86400) return `${Math.round(s / 86400)} d`;
  if (s < 365 * 86400) return `${Math.round(s / (30 * 86400))} mo`;
  return `${Math.round(s / (365 * 86400))} y`;
}
function countdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s >= 86400) return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
  if (s >= 3600) return `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
function hue(name) {
  let h = 0;
  for (const c of name) h = (h * 31 + c.codePointAt(0)) % 360;
  return h;
}
function paintAvatar(node, name) {
  node.textContent = (name || '?').replace(/^@/, '').slice(0, 1).toUpperCase();
  node.style.setProperty('--h', hue(name || '?'));
}
function chatName(entry) {
  const c = entry.chat;
  if (c.kind === 'direct' || c.kind === 'secret') return c.peer ? c.peer.username : c.title;
  return c.title || (c.username ? '@' + c.username : 'Chat ' + c.id);
}
function errorText(err) {
  if (!err) return '';
  const m = err.message || String(err);
  if (err.kind === 'RATE_LIMITED' && err.retryAfterMs) return `${m}`;
  return m;
}

// ---- boot and authentication -----------------------------------------------

async function boot() {
  const saved = loadSession();
  if (saved && saved.token) {
    showBoot('Connecting…');
    try {
      const h = await engine;
      const me = parse(await h.start(saved.token, handlers));
      return enterApp(me);
    } catch (err) {
      if (err && err.kind === 'UNAUTHENTICATED') {
        await wipe();
      } else {
        // The server is unreachable: try again shortly, keep the token.
        showBoot('Cannot reach the server. Retrying…');
        setTimeout(boot, 2000);
        return;
      }
    }
  }
  showAuth();
  engine.then(loadRules, () => {});
}

function showBoot(text) {
  $('boot').hidden = false;
  $('boot').querySelector('span').textContent = text;
  $('auth').hidden = true;
  $('app').hidden = true;
}

function showAuth() {
  $('boot').hidden = true;
  $('app').hidden = true;
  $('auth').hidden = false;
  $('auth-username').focus();
}

// The server's rules, if its operator set any, are shown before signing up.
async function loadRules(h) {
  try {
    const info = parse(await h.info());
    if (info.rules) {
      $('rules-text').textContent = info.rules;
      $('rules').hidden = false;
    }
  } catch { /* the form works without them */ }
}

const handlers = {
  onEvent: (kind, json) => {
    try {
      const v = parse(json);
      if (kind === 'update') onUpdate(v);
      else if (kind === 'typing') onTyping(v);
      else if (kind === 'answer') onAnswer(v);
      else if (kind === 'call') onCallEvent(v);
      else if (kind === 'resync') resync();
      else if (kind === 'secret') onSecret(v);
      else if (kind === 'reaction') onReaction(v);
      else if (kind === 'pin') onPin(v);
    } catch (err) {
      console.error('event', err);
    }
  },
  onConnection: (s) => {
    state.conn = s;
    renderConn();
    if (s === 'logged-out') loggedOut();
  },
};

async function authenticate(kind) {
  const username = $('auth-username').value.trim().replace(/^@/, '').toLowerCase();
  const password = $('auth-password').value;
  const errEl = $('auth-error');
  errEl.textContent = '';
  if (!username) { errEl.textContent = 'Enter a username.'; $('auth-username').focus(); return; }
  if (!password) { errEl.textContent = 'Enter a password.'; $('auth-password').focus(); return; }
  const buttons = [$('login-btn'), $('signup-btn')];
  buttons.forEach((b) => { b.disabled = true; });
  $('auth-form').setAttribute('aria-busy', 'true');
  try {
    const h = await engine;
    const req = JSON.stringify({ username, password, device_name: deviceName() });
    const res = parse(kind === 'signup' ? await h.signup(req, handlers) : await h.login(req, handlers));
    saveSession(res.token, res.user);
    $('auth-password').value = '';
    await enterApp(res.user);
  } catch (err) {
    errEl.textContent = errorText(err);
    (err && err.kind === 'ALREADY_EXISTS' ? $('auth-username') : $('auth-password')).focus();
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    $('auth-form').removeAttribute('aria-busy');
  }
}

function deviceName() {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua) ? 'Firefox' : /Edg\//.test(ua) ? 'Edge' : /Chrom/.test(ua) ? 'Chromium' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  return `Web (${browser})`;
}

$('auth-form').addEventListener('submit', (e) => { e.preventDefault(); authenticate('login'); });
$('signup-btn').addEventListener('click', () => authenticate('signup'));

async function enterApp(me) {
  state.me = me;
  $('boot').hidden = true;
  $('auth').hidden = true;
  $('app').hidden = false;
  $('me-name').textContent = me.display_name || me.username;
  paintAvatar($('me-avatar'), me.username);
  renderConn();
  call('server.info').then((info) => { if (info.reactions && info.reactions.length) state.reactionSet = info.reactions; }).catch(() => {});
  await loadChats();
  firstAction().focus();
  reportFocus();
  const wanted = chatFromHash();
  if (wanted && state.chats.has(wanted)) openChat(wanted, { focus: false });
  // Secret chats come from this browser's own store, once the engine has
  // opened it (a first login also makes and publishes the keys).
  loadSecrets().catch((err) => console.warn('secret chats:', errorText(err)));
}

function loggedOut() {
  wipe().then(() => location.replace('/'));
}

$('logout-btn').addEventListener('click', async () => {
  $('logout-btn').disabled = true;
  try { await (await engine).logout(); } catch { /* forgotten locally either way */ }
  await wipe();
  location.replace('/');
});

// When the browser reports the network gone, drop the socket at once: an
// idle WebSocket can look open for minutes after the network died, while
// the engine, once it knows, keeps retrying and then catches up on
// everything it missed from the update log. When the network comes back
// (after a laptop slept, or on another Wi-Fi with another address), the
// old socket is as likely dead: a fresh one costs one catch-up.
for (const ev of ['offline', 'online']) {
  window.addEventListener(ev, () => { engine.then((h) => h.drop()); });
}

function renderConn() {
  const c = $('conn');
  const text = { online: '', connecting: 'Connecting…', closed: 'Disconnected', 'logged-out': 'Logged out' }[state.conn] ?? '';
  c.textContent = text || `@${state.me ? state.me.username : ''}`;
  c.classList.toggle('warn', !!text);
}

// ---- chat list -------------------------------------------------------------

// The chat list comes in pages; more load as it is scrolled down.
const CHATS_PAGE = 100;

// addChats puts a page of the list into state.chats. The server orders
// chats without messages by when they were created, which the page cannot
// see: such a chat keeps its place by borrowing the time of the chat above
// it.
function addChats(dialogs, above) {
  for (const d of dialogs || []) {
    const since = d.last ? d.last.sent_at : above;
    above = since;
    state.chats.set(d.chat.id, { chat: d.chat, last: d.last || null, since, unread: d.unread || 0, mentions: d.unread_mentions || 0, read_id: d.read_id || 0, peer_read_id: d.peer_read_id || 0 });
  }
  return above;
}

// loadChats (re)loads the list from the top, as many pages as were loaded
// before, so a reload after an update keeps what the user scrolled to.
async function loadChats() {
  const want = Math.max(state.chatsWanted, CHATS_PAGE);
  const pages = [];
  let next = null;
  let count = 0;
  do {
    const list = await call('chats.list', next ? { limit: CHATS_PAGE, offset: next } : { limit: CHATS_PAGE });
    pages.push(list.dialogs || []);
    count += (list.dialogs || []).length;
    next = list.next || null;
  } while (next && count < want);
  state.chats.clear();
  let above = Date.now();
  for (const p of pages) above = addChats(p, above);
  state.chatsNext = next;
  state.chatsWanted = count;
  renderChats();
  if (state.open && state.open.id && state.chats.has(state.open.id)) renderHead();
  fillChats();
}

// loadMoreChats adds the next page at the bottom, once at a time.
function loadMoreChats() {
  if (!state.chatsNext || state.chatsMore) return state.chatsMore;
  const from = state.chatsNext;
  state.chatsMore = (async () => {
    try {
      const list = await call('chats.list', { limit: CHATS_PAGE, offset: from });
      if (state.chatsNext !== from) return; // the list was reloaded meanwhile
      let above = Date.now();
      for (const e of state.chats.values()) above = Math.min(above, e.since || above);
      addChats(list.dialogs, above);
      state.chatsNext = list.next || null;
      state.chatsWanted = state.chats.size;
      renderChats();
    } finally {
      state.chatsMore = null;
    }
    fillChats();
  })();
  return state.chatsMore;
}

// fillChats loads more while the list does not fill its box: no
// scrollbar, no scroll event.
function fillChats() {
  const ul = $('chats');
  if (state.chatsNext && ul.scrollHeight <= ul.clientHeight + 200) loadMoreChats().catch(() => {});
}

$('chats').addEventListener('scroll', () => {
  const ul = $('chats');
  if (ul.scrollTop + ul.clientHeight >= ul.scrollHeight - 200) loadMoreChats().catch(() => {});
});

let chatsTimer = 0;
function reloadChatsSoon() {
  clearTimeout(chatsTimer);
  chatsTimer = setTimeout(() => loadChats().catch(() => {}), 150);
}

function sortedChats() {
  const at = (e) => (e.last ? e.last.sent_at : e.since || 0);
  const secret = [...state.secrets.values()].map(secretEntry);
  return [...state.chats.values(), ...secret].sort((a, b) => at(b) - at(a) || String(b.chat.id).localeCompare(String(a.chat.id)));
}

// secretEntry makes a secret chat look like a chat-list entry.
function secretEntry(s) {
  return { secret: s, chat: { id: s.chat_id, kind: 'secret', peer: { username: s.username } }, last: s.last, since: s.since || 0, unread: s.unread || 0 };
}

function renderChats() {
  const ul = $('chats');
  const items = sortedChats();
  $('chats-empty').hidden = items.length > 0;
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.chat : null;
  ul.replaceChildren(...items.map(renderChatItem));
  if (focused) {
    const b = ul.querySelector(`button[data-chat="${focused}"]`);
    if (b) b.focus();
  }
}

function lastLine(entry) {
  const m = entry.last;
  if (!m) return entry.chat.kind === 'channel' ? 'Channel created' : 'No messages yet';
  if (m.deleted) return 'Message deleted';
  if (m.call) return callLine(m);
  if (m.file && !m.text) return fileLabel(m.file);
  if (m.secretFile && !m.text) return m.secretFile.name;
  const kind = entry.chat.kind;
  const from = kind === 'channel' ? '' : m.from_id === state.me.id ? 'You' : kind === 'group' ? m.from : '';
  return formatPreview(from, m.text || '', m.service);
}

function renderChatItem(entry) {
  const c = entry.chat;
  const li = el('li');
  const b = el('button', 'chat-item');
  b.type = 'button';
  b.dataset.chat = c.id;
  if (state.open && (state.open.id === c.id || (entry.secret && state.open.secret === entry.secret.username))) {
    b.setAttribute('aria-current', 'true');
    b.classList.add('active');
  }
  const name = chatName(entry);
  const av = el('span', 'avatar');
  av.setAttribute('aria-hidden', 'true');
  paintAvatar(av, name);
  const body = el('span', 'chat-body');
  const top = el('span', 'chat-top');
  const title = el('span', 'chat-name', name);
  if (c.kind === 'channel' || c.kind === 'group') title.prepend(iconSpan('kind-ic', c.kind));
  if (c.kind === 'secret') {
    // Read out as "Secret chat with alice", shown as a green lock.
    const lock = iconSpan('kind-ic lock', 'lock');
    title.prepend(lock, el('span', 'visually-hidden', 'Secret chat with '));
    title.classList.add('secret-name');
  }
  top.append(title);
  if (c.muted) {
    const mu = iconSpan('muted-ic', 'muted');
    mu.removeAttribute('aria-hidden');
    mu.title = 'Muted';
    mu.setAttribute('role', 'img');
    mu.setAttribute('aria-label', 'muted');
    top.append(mu);
  }
  top.append(el('span', 'chat-time', entry.last ? shortTime(entry.last.sent_at) : ''));
  const bottom = el('span', 'chat-bottom');
  bottom.append(el('span', 'chat-last', lastLine(entry)));
  if (entry.mentions > 0) {
    // Someone named the user: shown even in a muted chat, until read.
    const at = el('span', 'badge mention', '@');
    at.setAttribute('role', 'img');
    at.setAttribute('aria-label', `${entry.mentions} unread ${entry.mentions === 1 ? 'mention' : 'mentions'}`);
    bottom.append(at);
  }
  if (entry.unread > 0) {
    // The words are for screen readers; the number is what shows.
    const badge = el('span', 'badge' + (c.muted ? ' muted' : ''), String(entry.unread));
    badge.append(el('span', 'visually-hidden', ' unread'));
    bottom.append(badge);
  }
  body.append(top, bottom);
  b.append(av, body);
  b.addEventListener('click', () => (entry.secret ? openSecret(entry.secret.username) : openChat(c.id)));
  li.append(b);
  return li;
}

// ---- opening a chat --------------------------------------------------------

function showConvo() {
  $('placeholder').hidden = true;
  $('convo').hidden = false;
  $('app').classList.add('chat-open');
}

$('back-btn').addEventListener('click', closeChat);
function closeChat() {
  const was = state.open && state.open.id;
  state.open = null;
  state.preview = null;
  $('convo').hidden = true;
  $('placeholder').hidden = false;
  $('app').classList.remove('chat-open');
  renderChats();
  // Back where the person was in the list.
  const item = (was && $('chats').querySelector(`button[data-chat="${was}"]`)) || $('chats').querySelector('button');
  (item || firstAction()).focus();
}

function resetConvo() {
  state.msgs.clear();
  state.oldest = 0;
  state.complete = false;
  state.loading = false;
  state.reply = null;
  state.editing = null;
  state.pins = [];
  state.pinAt = 0;
  renderPins();
  renderContext();
  $('messages').replaceChildren();
  $('history-status').textContent = '';
  $('send-error').textContent = '';
  if ($('key-banner')) $('key-banner').remove();
  $('message-input').value = '';
  if (!state.upload || !state.upload.busy) $('upload').hidden = true;
  $('ttl').value = '0';
}

async function openChat(id, { focus = true } = {}) {
  state.open = { id };
  state.preview = null;
  resetConvo();
  showConvo();
  renderHead();
  loadChatNotify(id);
  renderChats();
  loadPins();
  await loadOlder();
  markRead();
  if (focus) focusComposer();
}

function openDraft(username) {
  state.open = { draft: username };
  state.preview = null;
  resetConvo();
  state.complete = true;
  showConvo();
  renderHead();
  renderChats();
  $('history-status').textContent = `This is the start of your conversation with @${username}.`;
  focusComposer();
}

async function openPreview(chat) {
  state.open = { id: chat.id };
  state.preview = chat.role === 'none' ? chat : null;
  resetConvo();
  showConvo();
  renderHead();
  renderChats();
  await loadOlder();
  if (state.preview) $('join-btn').focus();
  else focusComposer();
}

function focusComposer() {
  const input = $('message-input');
  if (!$('composer').hidden) input.focus();
  else if (!$('join-btn').hidden) $('join-btn').focus();
  else $('messages').focus();
}

function openEntry() {
  return state.open && state.open.id ? state.chats.get(state.open.id) : null;
}

function openChatObj() {
  const e = openEntry();
  if (e) return e.chat;
  if (state.preview) return state.preview;
  return null;
}

function canPost(chat) {
  if (!chat) return true; // a draft direct chat
  if (chat.kind === 'channel') return chat.role === 'owner' || chat.role === 'admin';
  return chat.role !== 'none';
}

function renderHead() {
  const chat = openChatObj();
  let name; let sub;
  const secret = state.open && state.open.secret;
  if (secret) {
    name = secret;
    sub = 'Secret chat · end-to-end encrypted on your devices';
  } else if (state.open && state.open.draft) {
    name = state.open.draft;
    sub = `@${state.open.draft}`;
  } else if (chat) {
    name = chat.kind === 'direct' ? (chat.peer ? chat.peer.username : chat.title) : (chat.title || '@' + chat.username);
    if (chat.kind === 'direct') sub = `@${name}`;
    else if (chat.kind === 'group') sub = formatCount(chat.member_count || 0, 'member');
    else sub = `${formatCount(chat.member_count || 0, 'subscriber')}${chat.username ? ' · @' + chat.username : ' · private'}`;
    if (chat.ttl_ms) sub += ` · auto-delete ${duration(chat.ttl_ms)}`;
  } else {
    name = '';
    sub = '';
  }
  $('chat-title').textContent = name;
  $('chat-lock').hidden = !secret;
  $('safety-btn').hidden = !secret;
  const callable = !secret && chat && chat.kind === 'direct' && chat.role !== 'none' && !(chat.peer && chat.peer.is_bot);
  $('voice-call-btn').hidden = !callable;
  $('video-call-btn').hidden = !callable;
  $('convo').classList.toggle('secret', !!secret);
  paintAvatar($('chat-avatar'), name);
  const typers = typingIn(state.open && state.open.id);
  $('chat-sub').textContent = typers.length ? `${typers.join(', ')} ${typers.length === 1 ? 'is' : 'are'} typing…` : sub;
  $('chat-sub').classList.toggle('typing', typers.length > 0);

  const member = chat && chat.role && chat.role !== 'none';
  const preview = !!state.preview;
  $('join-btn').hidden = !preview;
  $('mute-btn').hidden = !member;
  if (chat) {
    $('mute-btn').textContent = chat.muted ? 'Unmute' : 'Mute';
    $('mute-btn').setAttribute('aria-pressed', chat.muted ? 'true' : 'false');
  }
  $('notify-wrap').hidden = !member || !!secret;
  const admin = chat && (chat.kind === 'direct' || chat.role === 'owner' || chat.role === 'admin');
  $('autodel-wrap').hidden = !member || !admin || !!secret;
  if (chat) $('autodel').value = String(chat.ttl_ms || 0);
  const postable = secret || (!preview && canPost(chat));
  $('composer').hidden = !postable;
  $('readonly-note').hidden = postable;
  $('readonly-note').textContent = preview ? 'You are previewing this channel. Join to follow it.' : 'Only the channel\u2019s admins can post here.';
  // Broadcast chats have no typing indicators and no read receipts.
}

$('mute-btn').addEventListener('click', async () => {
  const chat = openChatObj();
  if (!chat) return;
  try {
    await call('chats.mute', { peer: { chat_id: chat.id }, muted: !chat.muted });
    chat.muted = !chat.muted;
    renderHead();
    renderChats();
  } catch (err) { $('send-error').textContent = errorText(err); }
});

$('join-btn').addEventListener('click', async () => {
  const chat = state.preview;
  if (!chat) return;
  try {
    await call('channels.join', { username: chat.username });
    state.preview = null;
    await loadChats();
    renderHead();
    focusComposer();
  } catch (err) { $('readonly-note').textContent = errorText(err); }
});

$('autodel').addEventListener('change', async () => {
  const chat = openChatObj();
  if (!chat) return;
  const ttl = Number($('autodel').value);
  try {
    const res = await call('chats.set_ttl', { peer: { chat_id: chat.id }, ttl_ms: ttl });
    chat.ttl_ms = res.ttl_ms || 0;
    renderHead();
  } catch (err) {
    $('send-error').textContent = errorText(err);
    $('autodel').value = String(chat.ttl_ms || 0);
  }
});

// ---- history -----------------------------------------------------------------

async function loadOlder() {
  if (!state.open || !state.open.id || state.loading || state.complete) return;
  const chatId = state.open.id;
  state.loading = true;
  $('history-status').textContent = 'Loading…';
  const scroller = $('scroller');
  const first = state.msgs.size === 0;
  const before = scroller.scrollHeight - scroller.scrollTop;
  try {
    const page = await call('messages.history', { peer: { chat_id: chatId }, before_id: state.oldest, limit: 50 });
    if (!state.open || state.open.id !== chatId) return;
    const msgs = page.messages || [];
    if (msgs.length === 0) state.complete = true;
    const frag = document.createDocumentFragment();
    for (const m of msgs) {
      if (state.msgs.has(m.id)) continue;
      state.msgs.set(m.id, m);
      frag.append(renderMessage(m));
    }
    if (msgs.length) state.oldest = msgs[0].id;
    if (state.oldest <= 1) state.complete = true;
    $('messages').prepend(frag);
    $('history-status').textContent = state.complete ? (state.msgs.size ? 'Beginning of the conversation' : 'No messages yet') : '';
    if (first) scroller.scrollTop = scroller.scrollHeight;
    else scroller.scrollTop = scroller.scrollHeight - before;
  } catch (err) {
    $('history-status').textContent = errorText(err);
  } finally {
    state.loading = false;
  }
  // A short first page may not fill the screen: keep going until it
  // scrolls or the history ends.
  if (!state.complete && scroller.scrollHeight <= scroller.clientHeight + 40) loadOlder();
}

$('scroller').addEventListener('scroll', () => {
  if ($('scroller').scrollTop < 120) loadOlder();
});

// ---- messages -----------------------------------------------------------------

// Channel posts are from the channel (from_id 0), so they are never
// drawn as one's own, whoever posted them.
function isMine(m) {
  return m.from_id === state.me.id;
}

function tickState(m) {
  // A secret message is read when the recipient's receipt (inside the
  // encryption) started its timer.
  if (m.secret) return m.read_at ? 'read' : 'sent';
  const e = state.chats.get(m.chat_id);
  if (!e || e.chat.broadcast) return 'sent';
  if (e.peer_read_id >= m.id) return 'read';
  return 'sent';
}

// callLine is a call's record as this person sees it.
function callLine(m) {
  return formatCall(m.from_id === state.me.id, !!m.call.video, m.call.outcome, Number(m.call.duration_ms || 0));
}

function renderMessage(m) {
  const chat = state.chats.get(m.chat_id);
  const mine = isMine(m);
  const li = el('li', 'msg ' + (m.service ? 'service' : mine ? 'out' : 'in'));
  li.dataset.id = m.id;
  if (m.service) {
    li.append(el('span', 'service-text', m.call ? callLine(m) : m.text));
    return li;
  }
  const bubble = el('div', 'bubble');
  if (chat && chat.chat.kind !== 'direct' && !mine) {
    // A channel's post is signed by the channel: people know it by its title.
    const name = chat.chat.kind === 'channel' ? chat.chat.title || m.from : m.from;
    const from = el('div', 'from', name + (m.author ? ` · ${m.author}` : ''));
    from.style.setProperty('--h', hue(m.from));
    bubble.append(from);
  }
  if (m.fwd) bubble.append(el('div', 'fwd', `Forwarded from ${m.fwd.title || m.fwd.from}`));
  if (m.reply_to) {
    const orig = state.msgs.get(m.reply_to);
    const q = el('div', 'reply-quote');
    q.append(el('strong', '', orig ? orig.from : 'Reply'), el('span', '', orig ? (orig.deleted ? 'Message deleted' : orig.text) : `to message #${m.reply_to}`));
    bubble.append(q);
  }
  if (m.file) {
    bubble.append(renderFile(m.file));
    li.classList.add('has-file');
  }
  if (m.secretFile) {
    bubble.append(renderSecretFile(m));
    li.classList.add('has-file');
  }
  if (m.text || !(m.file || m.secretFile)) {
    const t = el('div', 'text');
    t.append(richText(m.text || '', m.entities));
    bubble.append(t);
  }
  if (m.buttons && m.buttons.length && !m.deleted) bubble.append(renderKeyboard(m));
  if (m.reactions && m.reactions.length) bubble.append(renderReactions(m));
  if (m.mentions_me) li.classList.add('mentions-me');
  const meta = el('span', 'meta');
  if (m.ttl_ms) {
    const t = el('span', 'ttl');
    t.setAttribute('role', 'img');
    if (m.expires_at) {
      t.dataset.expires = m.expires_at;
      paintCountdown(t, m.expires_at - Date.now());
    } else {
      t.replaceChildren(icon('timer'), duration(m.ttl_ms));
      t.title = 'The countdown starts when it is read';
      t.setAttribute('aria-label', `disappears ${duration(m.ttl_ms)} after it is read`);
    }
    meta.append(t);
  }
  if (m.pinned) {
    const pin = el('span', 'pinned-mark', '📌');
    pin.setAttribute('role', 'img');
    pin.setAttribute('aria-label', 'pinned');
    meta.append(pin);
  }
  if (m.edited_at) meta.append(el('span', 'edited', 'edited'));
  if (m.views) meta.append(el('span', 'views', formatCount(m.views, 'view')));
  meta.append(el('time', '', shortTime(m.sent_at)));
  // A draft's first message is drawn before its chat is in the list: it
  // is a direct chat, so it gets ticks too.
  if (mine && (!chat || !chat.chat.broadcast)) {
    const ticks = el('span', 'ticks');
    ticks.setAttribute('role', 'img');
    const s = tickState(m);
    ticks.textContent = s === 'read' ? '✓✓' : '✓';
    ticks.classList.toggle('read', s === 'read');
    ticks.setAttribute('aria-label', s === 'read' ? 'read' : 'delivered');
    meta.append(ticks);
  }
  bubble.append(meta);
  li.append(bubble);
  // A secret message lives only on the devices: there is nothing to ask
  // the server to edit or delete, and its timer is its delete.
  if (m.secret) {
    li.dataset.secret = '1';
    return li;
  }
  const more = el('button', 'more', '⋯');
  more.type = 'button';
  more.setAttribute('aria-label', `Actions for message from ${mine ? 'you' : m.from}`);
  more.addEventListener('click', () => messageMenu(m.id));
  li.append(more);
  return li;
}

// renderKeyboard draws a bot's inline keyboard: rows of buttons. One
// with data is pressed through messages.press (the bot gets a callback
// query and may answer); one with a url is a link, opened in a new tab
// without a referrer.
function renderKeyboard(m) {
  const kb = el('div', 'keyboard');
  kb.setAttribute('role', 'group');
  kb.setAttribute('aria-label', `Buttons from ${m.from}`);
  for (const row of m.buttons) {
    const r = el('div', 'kb-row');
    for (const b of row.buttons || []) {
      if (b.url) {
        const a = el('a', 'kb-btn', b.text);
        a.href = b.url;
        a.target = '_blank';
        a.rel = 'noopener noreferrer';
        r.append(a);
        continue;
      }
      const btn = el('button', 'kb-btn', b.text);
      btn.type = 'button';
      btn.addEventListener('click', () => press(m, b, btn));
      r.append(btn);
    }
    kb.append(r);
  }
  return kb;
}

// toast shows a short notice (a bot's answer) that screen readers read
// out, and clears it after a while.
let toastTimer;
function toast(text) {
  const n = $('notice');
  n.textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { n.textContent = ''; }, 6000);
}

async function press(m, b, btn) {
  btn.disabled = true;
  btn.setAttribute('aria-busy', 'true');
  try {
    await call('messages.press', { chat_id: m.chat_id, id: m.id, data: b.data });
  } catch (err) {
    $('send-error').textContent = err.message || String(err);
  } finally {
    btn.disabled = false;
    btn.removeAttribute('aria-busy');
  }
}

// onAnswer shows a bot's answer to a press: a notice, or a dialog when
// the bot asked for an alert.
function onAnswer(a) {
  if (!a.text) return;
  if (a.alert) alert(`${a.bot}: ${a.text}`);
  else toast(`${a.bot}: ${a.text}`);
}

function paintCountdown(t, left) {
  t.replaceChildren(icon('timer'), countdown(left));
  t.setAttribute('aria-label', `disappears in ${countdown(left)}`);
}

// ---- reactions and pins -------------------------------------------------------

// renderReactions draws a message's reactions as toggle buttons: the
// emoji and its count, pressed when it is one of mine.
function renderReactions(m) {
  const row = el('div', 'reactions');
  row.setAttribute('role', 'group');
  row.setAttribute('aria-label', 'Reactions');
  for (const r of m.reactions) {
    const b = el('button', 'reaction' + (r.chosen ? ' mine' : ''), `${r.emoji} ${r.count || 0}`);
    b.type = 'button';
    b.setAttribute('aria-pressed', String(!!r.chosen));
    b.addEventListener('click', () => react(m, r.emoji).catch((err) => { $('send-error').textContent = errorText(err); }));
    row.append(b);
  }
  return row;
}

async function react(m, emoji) {
  const res = await call('messages.react', { chat_id: m.chat_id, id: m.id, emoji });
  const cur = state.msgs.get(m.id) || m;
  upsertMessage({ ...cur, reactions: res.reactions || [] });
}

// onReaction applies a pushed change. A channel's pushes name nobody, so
// which are mine is kept from what this device knew.
function onReaction(u) {
  const m = state.open && state.open.id === u.chat_id && state.msgs.get(u.id);
  if (!m) return;
  const rs = u.reactions || [];
  const anonymous = rs.every((r) => !r.user_ids || !r.user_ids.length);
  if (anonymous) {
    const mine = new Set((m.reactions || []).filter((r) => r.chosen).map((r) => r.emoji));
    for (const r of rs) r.chosen = mine.has(r.emoji);
  }
  upsertMessage({ ...m, reactions: rs });
}

function onPin(p) {
  if (!state.open || state.open.id !== p.chat_id) return;
  const m = state.msgs.get(p.id);
  if (m) upsertMessage({ ...m, pinned: p.pinned });
  loadPins();
}

async function loadPins() {
  const chat = openChatObj();
  if (!chat || !chat.id) return;
  try {
    const l = await call('messages.pins', { peer: { chat_id: chat.id } });
    if (!state.open || state.open.id !== chat.id) return;
    state.pins = l.messages || [];
  } catch { state.pins = []; }
  renderPins();
}

// renderPins shows the newest pin in the bar above the history; a click
// shows the pinned message (and the next click the one pinned before).
function renderPins() {
  const bar = $('pinned-bar');
  const pins = state.pins || [];
  bar.hidden = pins.length === 0;
  if (!pins.length) return;
  const at = Math.min(state.pinAt || 0, pins.length - 1);
  const m = pins[at];
  $('pinned-count').textContent = pins.length > 1 ? `${at + 1} of ${pins.length}` : '';
  $('pinned-text').textContent = m.text || (m.file ? m.file.name : '');
}

$('pinned-jump').addEventListener('click', () => {
  const pins = state.pins || [];
  if (!pins.length) return;
  const at = Math.min(state.pinAt || 0, pins.length - 1);
  const li = findLi(pins[at].id);
  if (li) {
    li.scrollIntoView({ block: 'center' });
    li.classList.add('flash');
    setTimeout(() => li.classList.remove('flash'), 1200);
  }
  state.pinAt = (at + 1) % pins.length;
  renderPins();
});

function findLi(id) {
  return $('messages').querySelector(`li[data-id="${id}"]`);
}

function upsertMessage(m) {
  if (!state.open || state.open.id !== m.chat_id) return;
  const had = state.msgs.has(m.id);
  state.msgs.set(m.id, m);
  const node = renderMessage(m);
  const old = findLi(m.id);
  if (old) { old.replaceWith(node); return; }
  if (had) return;
  const scroller = $('scroller');
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  // Keep id order: a message can arrive after a later one (a sync filling
  // a gap), so insert before the first higher id.
  const ul = $('messages');
  let next = null;
  for (const li of ul.children) {
    if (li.dataset.id && Number(li.dataset.id) > m.id) { next = li; break; }
  }
  ul.insertBefore(node, next && !next.classList.contains('pending') ? next : ul.querySelector('li.pending'));
  if (state.oldest === 0) state.oldest = m.id;
  if (atBottom || isMine(m)) scroller.scrollTop = scroller.scrollHeight;
}

function removeMessage(chatId, id) {
  if (!state.open || state.open.id !== chatId) return;
  state.msgs.delete(id);
  const li = findLi(id);
  if (li) li.remove();
  if (state.reply && state.reply.id === id) { state.reply = null; renderContext(); }
  if (state.editing && state.editing.id === id) { state.editing = null; renderContext(); }
}

function refreshTicks() {
  for (const m of state.msgs.values()) {
    if (!isMine(m)) continue;
    const li = findLi(m.id);
    const t = li && li.querySelector('.ticks');
    if (!t) continue;
    const read = tickState(m) === 'read';
    t.textContent = read ? '✓✓' : '✓';
    t.classList.toggle('read', read);
    t.setAttribute('aria-label', read ? 'read' : 'delivered');
  }
}

// Countdowns tick here, and a message whose time is up leaves the screen
// even before the server's delete arrives (or while offline).
setInterval(() => {
  const now = Date.now();
  for (const t of document.querySelectorAll('.ttl[data-expires]')) {
    const left = Number(t.dataset.expires) - now;
    const li = t.closest('li');
    if (left <= 0) {
      if (li && li.dataset.secret) { li.remove(); secretExpired(); }
      else if (li && state.open) removeMessage(state.open.id, Number(li.dataset.id));
      continue;
    }
    paintCountdown(t, left);
  }
  // Typing notices last 6 s unless renewed.
  let changed = false;
  for (const [chat, who] of state.typing) {
    for (const [name, until] of who) {
      if (until <= now) { who.delete(name); changed = true; }
    }
    if (who.size === 0) state.typing.delete(chat);
  }
  if (changed && state.open) renderHead();
}, 1000);

// ---- reading --------------------------------------------------------------------

let readTimer = 0;
function markRead() {
  clearTimeout(readTimer);
  readTimer = setTimeout(async () => {
    const e = openEntry();
    if (!e || state.preview || document.visibilityState !== 'visible') return;
    let max = 0;
    for (const id of state.msgs.keys()) max = Math.max(max, id);
    if (max === 0 || (e.read_id >= max && e.unread === 0)) return;
    try {
      await call('messages.read', { peer: { chat_id: e.chat.id }, max_id: max });
      e.read_id = Math.max(e.read_id, max);
      e.unread = 0;
      e.mentions = 0;
      renderChats();
    } catch { /* next time */ }
  }, 100);
}
document.addEventListener('visibilitychange', markRead);

// ---- updates ------------------------------------------------------------------------

function onUpdate(u) {
  if (u.new_message) return onNewMessage(u.new_message);
  if (u.edit_message) {
    const m = u.edit_message;
    upsertMessage(m);
    const e = state.chats.get(m.chat_id);
    if (e && e.last && e.last.id === m.id) { e.last = m; renderChats(); }
    return;
  }
  if (u.delete_messages) {
    const d = u.delete_messages;
    for (const id of d.ids || []) removeMessage(d.chat_id, id);
    const e = state.chats.get(d.chat_id);
    if (e && e.last && (d.ids || []).includes(e.last.id)) reloadChatsSoon();
    return;
  }
  if (u.read_inbox) {
    const r = u.read_inbox;
    const e = state.chats.get(r.chat_id);
    if (e) {
      e.read_id = Math.max(e.read_id, r.max_id);
      if (!e.last || r.max_id >= e.last.id) { e.unread = 0; renderChats(); } else reloadChatsSoon();
    }
    return;
  }
  if (u.read_outbox) {
    const r = u.read_outbox;
    const e = state.chats.get(r.chat_id);
    if (e) {
      e.peer_read_id = Math.max(e.peer_read_id, r.max_id);
      if (state.open && state.open.id === r.chat_id) refreshTicks();
    }
    return;
  }
  if (u.chat_left) {
    const l = u.chat_left;
    if (state.open && state.open.id === l.chat_id && !state.preview) closeChat();
    state.chats.delete(l.chat_id);
    reloadChatsSoon();
    return;
  }
  if (u.chat_joined || u.members_changed) reloadChatsSoon();
}

function onNewMessage(m) {
  const mine = isMine(m);
  if (mine && m.random_id && state.pending.has(m.random_id)) {
    const p = state.pending.get(m.random_id);
    state.pending.delete(m.random_id);
    if (p.el) p.el.remove();
  }
  // A draft direct chat becomes real with its first message, from
  // either side.
  if (state.open && state.open.draft) {
    const e = state.chats.get(m.chat_id);
    const direct = e ? e.chat.kind === 'direct' && e.chat.peer && e.chat.peer.username === state.open.draft : !m.author && m.from_id !== 0;
    if (direct && (mine || m.from === state.open.draft)) {
      state.open = { id: m.chat_id };
      $('history-status').textContent = '';
      reloadChatsSoon();
    }
  }
  let e = state.chats.get(m.chat_id);
  if (!e) {
    reloadChatsSoon();
  } else {
    if (!e.last || m.id >= e.last.id) e.last = m;
    const viewing = state.open && state.open.id === m.chat_id && document.visibilityState === 'visible';
    if (!mine && !viewing) e.unread += 1;
    if (m.mentions_me && !viewing) e.mentions = (e.mentions || 0) + 1;
    renderChats();
  }
  upsertMessage(m);
  if (!mine) markRead();
  // New typing from this person is over: they sent.
  const who = state.typing.get(m.chat_id);
  if (who && who.delete(m.from)) renderHead();
}

function onTyping(t) {
  if (!state.typing.has(t.chat_id)) state.typing.set(t.chat_id, new Map());
  state.typing.get(t.chat_id).set(t.username, Date.now() + 6000);
  if (state.open && state.open.id === t.chat_id) renderHead();
}

function typingIn(chatId) {
  const who = chatId ? state.typing.get(chatId) : null;
  return who ? [...who.keys()] : [];
}

// resync: the device was too far behind to replay the log; reload what is
// shown.
async function resync() {
  await loadChats();
  if (state.open && state.open.id) openChat(state.open.id, { focus: false });
}

// ---- composing ----------------------------------------------------------------------

const input = $('message-input');
const SHORTCUTS = { b: '**', i: '_', u: '__' };
input.addEventListener('keydown', (e) => {
  const mark = (e.ctrlKey || e.metaKey) && !e.altKey && !e.shiftKey && SHORTCUTS[e.key.toLowerCase()];
  if (mark) {
    e.preventDefault();
    wrapSelection(input, mark);
    return;
  }
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $('composer').requestSubmit();
  } else if (e.key === 'Escape' && (state.reply || state.editing)) {
    e.preventDefault();
    cancelContext();
  }
});
input.addEventListener('input', () => {
  input.style.height = 'auto';
  input.style.height = Math.min(input.scrollHeight, 160) + 'px';
  const chat = openChatObj();
  if (!chat || chat.broadcast || !input.value) return;
  const now = Date.now();
  if (now - state.lastTyping > 4000) {
    state.lastTyping = now;
    call('messages.typing', { chat_id: chat.id }).catch(() => {});
  }
});

function newRandomId() {
  const b = new BigUint64Array(1);
  crypto.getRandomValues(b);
  return ((b[0] & ((1n << 63n) - 1n)) | 1n).toString();
}

for (const b of $('format-bar').querySelectorAll('[data-mark]')) {
  b.addEventListener('click', () => wrapSelection(input, b.dataset.mark));
}

$('composer').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = input.value;
  // Markdown-style markers become entities; secret chats keep the text
  // as typed (their messages carry no entities).
  const md = parseMarkdown(text);
  $('send-error').textContent = '';
  if (!text.trim() || !state.open) return;
  if (state.editing) {
    const m = state.editing;
    state.editing = null;
    renderContext();
    input.value = '';
    try {
      upsertMessage(await call('messages.edit', { chat_id: m.chat_id, id: m.id, text: md.text, entities: md.entities }));
    } catch (err) { $('send-error').textContent = errorText(err); input.value = text; }
    return;
  }
  if (state.open.secret) {
    input.value = '';
    input.style.height = 'auto';
    return sendSecret(state.open.secret, text, Number($('ttl').value));
  }
  const req = { peer: currentPeer(), text: md.text, random_id: newRandomId() };
  if (md.entities.length) req.entities = md.entities;
  const ttl = Number($('ttl').value);
  if (ttl) req.ttl_ms = ttl;
  if (state.reply) req.reply_to = state.reply.id;
  state.reply = null;
  renderContext();
  input.value = '';
  input.style.height = 'auto';
  state.lastTyping = 0;
  await sendRequest(req, md.text);
});

// currentPeer is where the composer sends: the open chat, or the person
// of a chat not created yet.
function currentPeer() {
  return state.open.draft ? { username: state.open.draft } : { chat_id: state.open.id };
}

// sendRequest sends req and keeps the screen in step: the message is
// drawn at once with a clock and replaced by the stored one.
async function sendRequest(req, text) {
  // Shown at once with a clock; replaced by the real message when the
  // server's echo of this random id arrives (even after a reconnect).
  const li = el('li', 'msg out pending');
  const bubble = el('div', 'bubble');
  const meta = el('span', 'meta');
  const clock = el('span', 'ticks');
  clock.append(icon('timer'));
  clock.setAttribute('role', 'img');
  clock.setAttribute('aria-label', 'sending');
  meta.append(clock);
  if (req.file_id) {
    const fp = el('div', 'file-pending', state.upload ? state.upload.file.name : 'File');
    fp.prepend(icon('attach'));
    bubble.append(fp);
  }
  if (text) bubble.append(el('div', 'text', text));
  bubble.append(meta);
  li.append(bubble);
  $('messages').append(li);
  $('scroller').scrollTop = $('scroller').scrollHeight;
  state.pending.set(req.random_id, { text, el: li });
  try {
    const m = await call('messages.send', req);
    if (state.pending.has(req.random_id)) {
      state.pending.delete(req.random_id);
      li.remove();
    }
    if (state.open && state.open.draft) {
      state.open = { id: m.chat_id };
      await loadChats();
      renderHead();
    }
    upsertMessage(m);
    const en = state.chats.get(m.chat_id);
    if (en && (!en.last || m.id >= en.last.id)) { en.last = m; renderChats(); }
  } catch (err) {
    state.pending.delete(req.random_id);
    li.classList.add('failed');
    clock.textContent = '⚠';
    clock.setAttribute('aria-label', 'not sent');
    $('send-error').textContent = errorText(err);
  }
}

function renderContext() {
  const bar = $('context-bar');
  const m = state.editing || state.reply;
  bar.hidden = !m;
  if (!m) return;
  $('context-kind').textContent = state.editing ? 'Editing' : `Reply to ${m.from}:`;
  $('context-text').textContent = m.text.length > 80 ? m.text.slice(0, 80) + '…' : m.text;
}
function cancelContext() {
  if (state.editing) input.value = '';
  state.reply = null;
  state.editing = null;
  renderContext();
  input.focus();
}
$('context-cancel').addEventListener('click', cancelContext);

// ---- message actions ------------------------------------------------------------------

function messageMenu(id) {
  const m = state.msgs.get(id);
  if (!m) return;
  const chat = openChatObj();
  const dlg = $('dlg-msg');
  const mine = isMine(m);
  const admin = chat && (chat.role === 'owner' || chat.role === 'admin');
  $('dlg-msg-title').textContent = mine ? 'Your message' : `Message from ${m.from}`;
  $('dlg-msg-text').textContent = m.text;
  dlg.querySelector('.error').textContent = '';
  const show = {
    reply: !state.preview && canPost(chat),
    edit: mine || (chat && chat.kind === 'channel' && admin),
    'delete-me': !state.preview,
    'delete-all': mine || admin,
    react: !m.secret && !m.service && chat && (chat.role !== 'none'),
    pin: !m.secret && !m.service && chat && (chat.kind === 'direct' || admin),
  };
  dlg.querySelector('[data-act="pin"]').textContent = m.pinned ? 'Unpin' : 'Pin';
  const pick = $('dlg-msg-emoji');
  pick.hidden = true;
  dlg.querySelector('[data-act="react"]').setAttribute('aria-expanded', 'false');
  pick.replaceChildren(...state.reactionSet.map((emoji) => {
    const b = el('button', 'emoji', emoji);
    b.type = 'button';
    b.addEventListener('click', async () => {
      try {
        await react(m, emoji);
        dlg.close();
      } catch (err) { dlg.querySelector('.error').textContent = errorText(err); }
    });
    return b;
  }));
  for (const b of dlg.querySelectorAll('[data-act]')) {
    const act = b.dataset.act;
    b.hidden = act in show ? !show[act] : false;
    b.onclick = () => messageAction(act, m);
  }
  dlg.returnFocus = findLi(id) && findLi(id).querySelector('.more');
  dlg.showModal();
}

async function messageAction(act, m) {
  const dlg = $('dlg-msg');
  try {
    if (act === 'reply') {
      state.reply = m; state.editing = null; renderContext();
      dlg.close(); input.focus(); return;
    }
    if (act === 'edit') {
      state.editing = m; state.reply = null; renderContext();
      input.value = m.text;
      dlg.close(); input.focus(); return;
    }
    if (act === 'react') {
      const pick = $('dlg-msg-emoji');
      pick.hidden = !pick.hidden;
      dlg.querySelector('[data-act="react"]').setAttribute('aria-expanded', String(!pick.hidden));
      if (!pick.hidden) pick.querySelector('button').focus();
      return;
    }
    if (act === 'pin') {
      await call(m.pinned ? 'messages.unpin' : 'messages.pin', { chat_id: m.chat_id, id: m.id });
      upsertMessage({ ...m, pinned: !m.pinned });
      loadPins();
    }
    if (act === 'delete-me' || act === 'delete-all') {
      await call('messages.delete', { chat_id: m.chat_id, ids: [m.id], for_everyone: act === 'delete-all' });
      removeMessage(m.chat_id, m.id);
      reloadChatsSoon();
    }
    dlg.close();
    if (dlg.returnFocus && dlg.returnFocus.isConnected) dlg.returnFocus.focus(); else input.focus();
  } catch (err) {
    dlg.querySelector('.error').textContent = errorText(err);
  }
}

// ---- dialogs -------------------------------------------------------------------------------

// formDialog opens a dialog whose form calls submit(); an error keeps it
// open with the sentence shown next to the fields.
function formDialog(id, submit) {
  const dlg = $(id);
  const form = dlg.querySelector('form');
  const err = dlg.querySelector('.error');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      if (await submit(dlg) !== false) {
        form.reset();
        dlg.close();
      }
    } catch (ex) {
      err.textContent = errorText(ex);
    } finally {
      btn.disabled = false;
    }
  });
  form.querySelector('.cancel').addEventListener('click', () => { form.reset(); dlg.close(); });
  return () => {
    err.textContent = '';
    dlg.showModal();
    form.querySelector('input').focus();
  };
}

const clean = (s) => s.trim().replace(/^@/, '').toLowerCase();

const openNewChat = formDialog('dlg-chat', async () => {
  const name = clean($('new-chat-username').value);
  if (!name) throw new Error('Enter a username.');
  if (name === state.me.username) throw new Error('That is you. Pick someone else.');
  const user = await call('users.resolve', { username: name });
  const existing = [...state.chats.values()].find((e) => e.chat.kind === 'direct' && e.chat.peer && e.chat.peer.id === user.id);
  if (existing) {
    setTimeout(() => openChat(existing.chat.id));
  } else {
    setTimeout(() => openDraft(user.username));
  }
});
// ---- the New menu: at phone width the creation actions sit behind one
// button, as on Telegram; on a wide screen they show as a toolbar. ----
const newMenu = $('new-menu');
// firstAction is where focus goes in the chat list: New chat, or the New
// button when New chat is folded away.
const firstAction = () => ($('new-menu-btn').offsetParent !== null && !newMenu.classList.contains('open') ? $('new-menu-btn') : $('new-chat-btn'));
function setNewMenu(open) {
  newMenu.classList.toggle('open', open);
  $('new-menu-btn').setAttribute('aria-expanded', String(open));
}
$('new-menu-btn').addEventListener('click', () => {
  const open = !newMenu.classList.contains('open');
  setNewMenu(open);
  if (open) $('new-chat-btn').focus();
});
newMenu.addEventListener('click', (e) => { if (e.target.closest('button')) setNewMenu(false); });
newMenu.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape' || !newMenu.classList.contains('open')) return;
  setNewMenu(false);
  $('new-menu-btn').focus();
});
fillIcons();
initCalls({
  call,
  notice: toast,
  openDirectChat: () => {
    const c = openChatObj();
    return c && c.kind === 'direct' && !(state.open && state.open.secret) ? c.id : 0;
  },
  peerName: (id) => {
    const e = state.chats.get(id);
    return e && e.chat.peer ? e.chat.peer.username : '';
  },
});

$('new-chat-btn').addEventListener('click', openNewChat);

const openNewGroup = formDialog('dlg-group', async () => {
  const title = $('group-title').value.trim();
  if (!title) throw new Error('Give the group a name.');
  const usernames = $('group-members').value.split(/[\s,]+/).map(clean).filter(Boolean);
  const chat = await call('groups.create', { title, usernames });
  await loadChats();
  setTimeout(() => openChat(chat.id));
});
$('new-group-btn').addEventListener('click', openNewGroup);

const openNewChannel = formDialog('dlg-channel', async () => {
  const priv = $('channel-private').checked;
  const username = clean($('channel-name').value);
  const title = $('channel-title').value.trim();
  if (!priv && !username) throw new Error('A public channel needs a name.');
  if (priv && !username && !title) throw new Error('Give the channel a title.');
  const chat = await call('channels.create', { username, title, description: $('channel-description').value.trim(), private: priv });
  await loadChats();
  setTimeout(() => openChat(chat.id));
});
$('new-channel-btn').addEventListener('click', openNewChannel);

const openFind = formDialog('dlg-find', async () => {
  const raw = $('find-name').value.trim();
  if (!raw) throw new Error('Enter a channel name.');
  const looksLikeInvite = !raw.startsWith('@') && /[A-Z-]/.test(raw) && raw.length === 22;
  if (looksLikeInvite) {
    const chat = await call('channels.join', { invite: raw });
    await loadChats();
    setTimeout(() => openChat(chat.id));
    return;
  }
  const name = clean(raw);
  const chat = await call('chats.get', { peer: { username: name } });
  if (chat.kind !== 'channel') throw new Error(`@${name} is a person, not a channel: use New chat.`);
  setTimeout(() => openPreview(chat));
});
$('find-channel-btn').addEventListener('click', openFind);

// ---- files ------------------------------------------------------------------------------------


function fileLabel(f) {
  return { photo: 'Photo', video: 'Video', voice: 'Voice message' }[f.kind] || f.name;
}

// Signed links (files.link) let <img>, <video> and <a> fetch a file with
// no token: the token never goes into a URL, where it would reach
// history and logs. A link lasts an hour; one is reused until ten
// minutes before it expires.
const links = new Map(); // file id → Promise<{url, expires_at}>
function fileLink(id) {
  const have = links.get(id);
  if (have) return have.then((l) => (l.expires_at - Date.now() > 600_000 ? l.url : (links.delete(id), fileLink(id))));
  const p = call('files.link', { id });
  links.set(id, p);
  p.catch(() => links.delete(id));
  return p.then((l) => l.url);
}

// renderFile draws an attachment the way a messenger does: a photo's
// thumbnail (opening the full photo), a playable video or audio, or a
// document card with its name and size that opens or downloads it.
function renderFile(f) {
  const name = f.name || 'file';
  if (f.kind === 'photo' && f.thumb) {
    const a = el('a', 'photo');
    a.target = '_blank';
    a.rel = 'noopener';
    a.setAttribute('aria-label', `Open photo ${name}`);
    const img = el('img');
    img.alt = name;
    img.decoding = 'async';
    if (f.width && f.height) {
      // Reserve the thumbnail's box so the list does not jump when it loads.
      const scale = Math.min(1, 320 / Math.max(f.width, f.height));
      img.width = Math.round(f.width * scale);
      img.height = Math.round(f.height * scale);
    }
    a.append(img);
    fileLink(f.id).then((url) => { img.src = url + '&thumb=1'; a.href = url; }, () => { img.alt = `${name} (could not be loaded)`; });
    return a;
  }
  if (f.kind === 'video' || f.kind === 'audio' || f.kind === 'voice') {
    const wrap = el('div', 'media');
    const media = el(f.kind === 'video' ? 'video' : 'audio');
    media.controls = true;
    media.preload = 'metadata';
    media.setAttribute('aria-label', name);
    wrap.append(media);
    if (f.kind !== 'video') wrap.append(el('div', 'media-name', `${name} · ${formatSize(f.size)}`));
    fileLink(f.id).then((url) => { media.src = url; }, () => {});
    return wrap;
  }
  const a = el('a', 'doc');
  a.target = '_blank';
  a.rel = 'noopener';
  a.download = name;
  const icon = el('span', 'doc-ic', /pdf/.test(f.mime || '') ? 'PDF' : (name.split('.').pop() || 'FILE').slice(0, 4).toUpperCase());
  icon.setAttribute('aria-hidden', 'true');
  const info = el('span', 'doc-info');
  info.append(el('span', 'doc-name', name), el('span', 'doc-size', formatSize(f.size)));
  a.append(icon, info);
  a.setAttribute('aria-label', `Download ${name}, ${formatSize(f.size)}`);
  fileLink(f.id).then((url) => { a.href = url; }, () => {});
  return a;
}

$('attach-btn').addEventListener('click', () => {
  if (state.upload && state.upload.busy) return;
  $('file-input').click();
});
$('file-input').addEventListener('change', () => {
  const file = $('file-input').files[0];
  $('file-input').value = '';
  if (!file || !state.open) return;
  const caption = input.value;
  input.value = '';
  if (state.open.secret) {
    upload({ file, caption, secret: state.open.secret });
    return;
  }
  upload({ file, caption, peer: currentPeer(), draft: state.open.draft });
});
$('upload-retry').addEventListener('click', () => { if (state.upload) upload(state.upload); });
$('upload-dismiss').addEventListener('click', () => {
  if (state.upload && state.upload.caption && !input.value) input.value = state.upload.caption;
  state.upload = null;
  $('upload').hidden = true;
  input.focus();
});

// upload sends a file through the engine's tus client, then the message
// that carries it. An interrupted upload keeps its place on the server
// and in localStorage: Resume upload (or attaching the same file again,
// even after a reload) continues from the last byte the server has.
async function upload(u) {
  state.upload = u;
  u.busy = true;
  const box = $('upload');
  const bar = $('upload-progress');
  box.hidden = false;
  box.classList.remove('failed');
  $('upload-name').textContent = `${u.file.name} · ${formatSize(u.file.size)}`;
  $('upload-retry').hidden = true;
  $('upload-dismiss').hidden = true;
  $('upload-status').textContent = 'Preparing…';
  bar.setAttribute('aria-label', `Uploading ${u.file.name}`);
  bar.value = 0;
  const progress = (done, total) => {
    bar.value = total ? done / total : 1;
    $('upload-status').textContent = `${Math.floor((100 * done) / (total || 1))}%`;
  };
  try {
    const h = await engine;
    if (u.secret) {
      // Encrypted in the engine with a key of its own, and only the
      // ciphertext uploaded; the key travels inside the Signal message.
      $('upload-status').textContent = 'Encrypting…';
      const params = { username: u.secret, text: u.caption, ttl_ms: Number($('ttl').value) };
      const m = secretMsg(JSON.parse(await h.secret('send', JSON.stringify(params), u.file, progress)));
      tellTabs(m.peer_id);
      u.busy = false;
      if (state.upload === u) { state.upload = null; box.hidden = true; }
      const s = state.secrets.get(u.secret);
      if (s) { s.last = m; s.since = m.sent_at; }
      renderChats();
      await renderSecretHistory();
      return;
    }
    const f = parse(await h.upload(u.file, progress));
    $('upload-status').textContent = 'Sending…';
    u.busy = false;
    const req = { peer: u.peer, text: u.caption, file_id: f.id, random_id: newRandomId() };
    const ttl = Number($('ttl').value);
    if (ttl) req.ttl_ms = ttl;
    await sendRequest(req, u.caption);
    if (state.upload === u) { state.upload = null; box.hidden = true; }
  } catch (err) {
    u.busy = false;
    box.classList.add('failed');
    $('upload-status').textContent = `Upload interrupted: ${errorText(err)}`;
    $('upload-retry').hidden = false;
    $('upload-dismiss').hidden = false;
    $('upload-retry').focus();
  }
}

// ---- secret chats --------------------------------------------------------------------------

// secret runs one operation of the engine's secret chats. Lists come
// back as JSON null when empty (Go's nil slice): they are arrays here.
async function secret(op, params = {}) {
  const h = await engine;
  const v = JSON.parse(await h.secret(op, JSON.stringify(params)));
  return v === null && ['chats', 'history', 'stored', 'read'].includes(op) ? [] : v;
}

// A secret message as this device keeps it (client.SecretMessage) in the
// shape renderMessage draws.
function secretMsg(s) {
  return {
    secret: true, id: s.id, chat_id: s.chat_id, from_id: s.from_id, from: s.from, text: s.text,
    sent_at: Date.parse(s.sent_at), ttl_ms: s.ttl ? Math.round(s.ttl / 1e6) : 0,
    expires_at: s.expires_at ? Date.parse(s.expires_at) : 0, read_at: s.read_at ? Date.parse(s.read_at) : 0,
    peer_id: s.peer_id, peer: s.peer, outgoing: s.outgoing, warning: s.warning || '',
    secretFile: s.file || null,
  };
}

// A secret message's file is on the server only as ciphertext: the
// engine fetches, decrypts and checks it, and the page shows the bytes
// through a Blob that lives in this tab. Each is opened once per page
// (message id → Promise<Blob>); a redraw of the chat reuses it.
const secretBlobs = new Map();
function secretBlob(m) {
  let p = secretBlobs.get(m.id);
  if (!p) {
    p = engine.then((h) => h.secret('download', JSON.stringify({ peer_id: m.peer_id, id: m.id })))
      .then((bytes) => new Blob([bytes], { type: mimeOf(m.secretFile.name) }));
    p.catch(() => secretBlobs.delete(m.id));
    secretBlobs.set(m.id, p);
  }
  return p;
}

function mimeOf(name) {
  const ext = (name.split('.').pop() || '').toLowerCase();
  return { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', pdf: 'application/pdf', txt: 'text/plain' }[ext] || 'application/octet-stream';
}

// renderSecretFile draws a secret message's file as a card that decrypts
// and saves it when pressed; a photo (up to 10 MiB) is also decrypted at
// once and shown inline, as a data: URL, which the page's policy admits
// for images.
function renderSecretFile(m) {
  const f = m.secretFile;
  const name = f.name || 'file';
  const wrap = el('div', 'secret-file');
  if (/^image\//.test(mimeOf(name)) && f.size <= 10 << 20) {
    const img = el('img', 'secret-photo');
    img.alt = name;
    wrap.append(img);
    secretBlob(m).then((blob) => new Promise((resolve, reject) => {
      const r = new FileReader();
      r.onload = () => resolve(r.result);
      r.onerror = () => reject(r.error);
      r.readAsDataURL(blob);
    })).then((url) => { img.src = url; }, () => { img.alt = `${name} (could not be decrypted)`; });
  }
  const b = el('button', 'doc');
  b.type = 'button';
  const icon = el('span', 'doc-ic', (name.split('.').pop() || 'FILE').slice(0, 4).toUpperCase());
  icon.setAttribute('aria-hidden', 'true');
  const info = el('span', 'doc-info');
  const size = el('span', 'doc-size', formatSize(f.size));
  info.append(el('span', 'doc-name', name), size);
  b.append(icon, info);
  b.setAttribute('aria-label', `Download ${name}, ${formatSize(f.size)}`);
  b.addEventListener('click', async () => {
    size.textContent = 'Decrypting…';
    try {
      const url = URL.createObjectURL(await secretBlob(m));
      const a = el('a');
      a.href = url;
      a.download = name;
      a.hidden = true;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      size.textContent = formatSize(f.size);
    } catch (err) {
      size.textContent = `Could not open: ${errorText(err)}`;
    }
  });
  wrap.append(b);
  return wrap;
}

async function loadSecrets() {
  for (const p of await secret('chats')) {
    // Stored, not history: listing a chat must not start its timers.
    const hist = (await secret('stored', { peer_id: p.id })).map(secretMsg);
    const last = hist[hist.length - 1] || null;
    const had = state.secrets.get(p.username);
    state.secrets.set(p.username, { peer_id: p.id, username: p.username, chat_id: p.chat_id, last, since: last ? last.sent_at : 0, unread: had ? had.unread : 0 });
  }
  renderChats();
}

// Tabs of one account share the secret chats' store (IndexedDB), and
// the engine's Web Lock lets one tab at a time advance its sessions: an
// envelope pushed to both is decrypted and stored by whichever gets
// there first, and the other sees a replay. So a tab that stored
// something says so on a BroadcastChannel (the account and the peer,
// never a message), and the others redraw from the store.
const secretTabs = typeof BroadcastChannel === 'function' ? new BroadcastChannel('herald.secret') : null;
function tellTabs(peer) {
  if (secretTabs && state.me) secretTabs.postMessage({ user: state.me.id, peer });
}
if (secretTabs) {
  secretTabs.onmessage = (e) => {
    if (!state.me || !e.data || e.data.user !== state.me.id) return;
    loadSecrets().then(() => {
      if (state.open && state.open.secret) return renderSecretHistory();
    }).catch(() => {});
  };
}

async function openSecret(username) {
  state.open = { secret: username };
  state.preview = null;
  resetConvo();
  state.complete = true;
  showConvo();
  renderHead();
  renderChats();
  const s = state.secrets.get(username);
  if (s) { s.unread = 0; renderChats(); }
  await renderSecretHistory();
  focusComposer();
}

// renderSecretHistory draws the open secret chat from the local store:
// the server has only ciphertext, which it deletes once delivered.
async function renderSecretHistory() {
  const username = state.open && state.open.secret;
  if (!username) return;
  // Reading starts the timers of what came in, on every device of both:
  // only a chat on screen is read.
  const entry = state.secrets.get(username);
  const visible = document.visibilityState === 'visible';
  const hist = (await (visible || !entry ? secret('history', { username }) : secret('stored', { peer_id: entry.peer_id }))).map(secretMsg);
  if (entry) {
    // An expired message leaves the list's preview too.
    entry.last = hist[hist.length - 1] || null;
    renderChats();
  }
  if (!state.open || state.open.secret !== username) return;
  if (entry) keyBanner(username, (await secret('keychange', { peer_id: entry.peer_id })).key_changed);
  if (!state.open || state.open.secret !== username) return;
  $('history-status').textContent = 'Messages in this chat are end-to-end encrypted: only you and @' + username + ' can read them. They are kept in this browser only.';
  const ul = $('messages');
  const pending = [...ul.querySelectorAll('li.pending')];
  ul.replaceChildren(...hist.map((m) => {
    const li = renderMessage(m);
    if (m.warning) li.querySelector('.bubble').prepend(el('div', 'warning', '⚠ ' + m.warning));
    return li;
  }), ...pending);
  $('scroller').scrollTop = $('scroller').scrollHeight;
}
document.addEventListener('visibilitychange', () => {
  if (state.open && state.open.secret && document.visibilityState === 'visible') renderSecretHistory();
});
// secretExpired redraws the open secret chat soon after a countdown ran
// out, so the list's preview drops the message too.
let secretTimer = 0;
function secretExpired() {
  clearTimeout(secretTimer);
  secretTimer = setTimeout(() => renderSecretHistory().catch(() => {}), 300);
}

async function sendSecret(username, text, ttl) {
  const li = el('li', 'msg out pending');
  const bubble = el('div', 'bubble');
  const clock = el('span', 'ticks');
  clock.append(icon('timer'));
  clock.setAttribute('role', 'img');
  clock.setAttribute('aria-label', 'sending');
  const meta = el('span', 'meta');
  meta.append(clock);
  bubble.append(el('div', 'text', text), meta);
  li.append(bubble);
  $('messages').append(li);
  $('scroller').scrollTop = $('scroller').scrollHeight;
  try {
    const m = secretMsg(await secret('send', { username, text, ttl_ms: ttl }));
    tellTabs(m.peer_id);
    li.remove();
    const s = state.secrets.get(username);
    if (s) { s.last = m; s.since = m.sent_at; }
    renderChats();
    await renderSecretHistory();
  } catch (err) {
    li.classList.add('failed');
    clock.textContent = '⚠';
    clock.setAttribute('aria-label', 'not sent');
    if (err.kind === 'KEY_CHANGED') keyBanner(username, errorText(err));
    else $('send-error').textContent = errorText(err);
  }
}

// keyBanner shows, in the open secret chat with username, that a device
// has a new identity key (text: the engine's sentence), or hides it when
// text is empty. Nothing is sent to or read from that device until the
// person verifies the new number or accepts it: as Signal does, a key
// change is never trusted silently.
function keyBanner(username, text) {
  let b = $('key-banner');
  if (!text || !state.open || state.open.secret !== username) {
    if (b) b.remove();
    return;
  }
  if (!b) {
    b = el('div', 'key-banner');
    b.id = 'key-banner';
    b.setAttribute('role', 'alert');
    const verify = el('button', 'ghost', 'Verify');
    verify.type = 'button';
    verify.addEventListener('click', showSafety);
    const accept = el('button', 'primary', 'Accept');
    accept.type = 'button';
    accept.addEventListener('click', async () => {
      const who = state.open && state.open.secret;
      if (!who) return;
      accept.disabled = true;
      try {
        await secret('accept', { username: who });
        keyBanner(who, '');
        tellTabs(state.secrets.has(who) ? state.secrets.get(who).peer_id : 0);
        await renderSecretHistory();
      } catch (err) {
        b.querySelector('.key-banner-text').textContent = errorText(err);
      } finally {
        accept.disabled = false;
      }
    });
    const row = el('div', 'key-banner-actions');
    row.append(verify, accept);
    b.append(el('p', 'key-banner-text'), row);
    $('scroller').before(b);
  }
  b.querySelector('.key-banner-text').textContent = text;
}

function onSecret(ev) {
  if (ev.error) {
    if (ev.kind === 'KEY_CHANGED') {
      for (const s of state.secrets.values()) if (s.peer_id === ev.peer) keyBanner(s.username, ev.error);
      return;
    }
    console.warn('secret chat:', ev.error);
    return;
  }
  let username = null;
  if (ev.message) {
    const m = secretMsg(ev.message);
    username = m.peer;
    let s = state.secrets.get(username);
    if (!s) {
      s = { peer_id: m.peer_id, username, chat_id: m.chat_id, last: null, since: 0, unread: 0 };
      state.secrets.set(username, s);
    }
    s.last = m;
    s.since = m.sent_at;
    const viewing = state.open && state.open.secret === username && document.visibilityState === 'visible';
    if (!m.outgoing && !viewing) s.unread += 1;
    renderChats();
  } else if (ev.read) {
    for (const s of state.secrets.values()) if (s.peer_id === ev.peer) username = s.username;
  }
  if (ev.message || (ev.read && ev.read.length)) tellTabs(ev.message ? ev.message.peer_id : ev.peer);
  if (username && state.open && state.open.secret === username) renderSecretHistory();
}

const openNewSecret = formDialog('dlg-secret', async () => {
  const name = clean($('secret-username').value);
  if (!name) throw new Error('Enter a username.');
  if (name === state.me.username) throw new Error('That is you. Pick someone else.');
  const user = await call('users.resolve', { username: name });
  const { chat_id: chatId } = await secret('start', { username: user.username });
  if (!state.secrets.has(user.username)) {
    state.secrets.set(user.username, { peer_id: user.id, username: user.username, chat_id: chatId, last: null, since: Date.now(), unread: 0 });
  }
  setTimeout(() => openSecret(user.username));
});
$('new-secret-btn').addEventListener('click', openNewSecret);

// The safety number: both people see the same 60 digits exactly when no
// one sits between them; Verify records that they compared it in person.
async function showSafety() {
  const username = state.open && state.open.secret;
  if (!username) return;
  const dlg = $('dlg-safety');
  dlg.querySelector('.error').textContent = '';
  $('safety-with').textContent = `Compare these numbers with @${username}, in person or on a call you trust. If they match, no one can read your secret chat.`;
  const paint = (sn) => {
    $('safety-number').textContent = (sn.number.match(/\d{1,5}/g) || [sn.number]).join(' ');
    $('safety-state').textContent = sn.key_changed ? '⚠ ' + sn.key_changed + ' This is the number before the change; accept to see the new one.'
      : sn.verified ? '✓ Verified' : sn.changed ? '⚠ Changed since the chat began: compare again.' : 'Not verified yet.';
    $('safety-state').classList.toggle('ok', sn.verified);
    $('verify-btn').hidden = sn.verified || !!sn.key_changed;
  };
  $('safety-number').textContent = '…';
  dlg.showModal();
  try { paint(await secret('safety', { username })); } catch (err) { dlg.querySelector('.error').textContent = errorText(err); }
  $('verify-btn').onclick = async () => {
    try { paint(await secret('verify', { username })); $('safety-close').focus(); } catch (err) { dlg.querySelector('.error').textContent = errorText(err); }
  };
}
$('safety-btn').addEventListener('click', showSafety);
$('safety-close').addEventListener('click', () => $('dlg-safety').close());

// Dialogs give focus back to the button that opened them.
for (const dlg of document.querySelectorAll('dialog')) {
  let opener = null;
  dlg.addEventListener('close', () => {
    if (opener && opener.isConnected && !dlg.contains(document.activeElement) && document.activeElement === document.body) opener.focus();
  });
  const orig = dlg.showModal.bind(dlg);
  dlg.showModal = () => { opener = document.activeElement; orig(); };
}

// ---- notifications and the installed app (docs/NOTIFICATIONS.md) ---------

// The service worker keeps the app shell for offline starts and shows
// pushes. Under Trusted Types its URL passes through a policy that
// admits this one script and nothing else.
const swPolicy = globalThis.trustedTypes
  ? trustedTypes.createPolicy('herald-sw', { createScriptURL: (u) => { if (u !== '/sw.js') throw new Error('not the service worker'); return u; } })
  : { createScriptURL: (u) => u };
const swReady = ('serviceWorker' in navigator)
  ? navigator.serviceWorker.register(swPolicy.createScriptURL('/sw.js'), { scope: '/' }).catch((err) => { console.warn('service worker:', err.message); return null; })
  : Promise.resolve(null);

// A notification's click opens its chat: the worker tells an open window,
// or opens one at /#chat=ID.
function chatFromHash() {
  const m = location.hash.match(/^#chat=(\d+)$/);
  return m ? Number(m[1]) : 0;
}
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.addEventListener('message', (e) => {
    if (e.data && e.data.type === 'open-chat' && state.me && state.chats.has(e.data.chat_id)) openChat(e.data.chat_id);
  });
}
window.addEventListener('hashchange', () => {
  const id = chatFromHash();
  if (id && state.me && state.chats.has(id)) openChat(id);
});

// While this window is focused the server sends this device no pushes:
// it would only repeat what the window shows. The focus lapses on the
// server after two minutes unless renewed.
let focusTimer = null;
function reportFocus() {
  if (!state.me) return;
  const focused = document.visibilityState === 'visible' && document.hasFocus();
  call('push.focus', { focused }).catch(() => {});
  clearTimeout(focusTimer);
  if (focused) focusTimer = setTimeout(reportFocus, 60_000);
}
for (const ev of ['focus', 'blur']) window.addEventListener(ev, reportFocus);
document.addEventListener('visibilitychange', reportFocus);

const b64url = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const unb64url = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));

async function currentSubscription() {
  const reg = await swReady;
  return reg && reg.pushManager ? reg.pushManager.getSubscription() : null;
}

async function showSettings() {
  const dlg = $('dlg-settings');
  dlg.querySelector('.error').textContent = '';
  $('notif-status').textContent = '';
  const sub = await currentSubscription().catch(() => null);
  $('notif-switch').checked = !!sub && Notification.permission === 'granted';
  try {
    const prefs = await call('push.prefs');
    $('notif-text').checked = !prefs.hide_text;
    $('notif-sender').checked = !prefs.hide_sender;
  } catch (err) { $('notif-status').textContent = errorText(err); }
  dlg.showModal();
}
$('settings-btn').addEventListener('click', showSettings);
$('dlg-settings').querySelector('.cancel').addEventListener('click', () => $('dlg-settings').close());

// Turning notifications on asks for permission now, because the person
// chose it; the page never asks on load.
$('notif-switch').addEventListener('change', async () => {
  const sw = $('notif-switch');
  const err = $('dlg-settings').querySelector('.error');
  err.textContent = '';
  sw.disabled = true;
  try {
    if (sw.checked) {
      if (!('Notification' in globalThis) || !('PushManager' in globalThis)) throw new Error('This browser cannot show notifications from a closed app.');
      if (await Notification.requestPermission() !== 'granted') throw new Error('The browser did not allow notifications. Allow them in its site settings, then try again.');
      const cfg = await call('push.config');
      if (!cfg.enabled) throw new Error('This server does not send notifications.');
      const reg = await swReady;
      if (!reg) throw new Error('The service worker did not start, so notifications cannot reach a closed app.');
      let sub;
      try {
        // A browser without a reachable push service may never answer.
        sub = await Promise.race([
          reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: unb64url(cfg.vapid_public_key) }),
          new Promise((_, reject) => setTimeout(() => reject(new Error('no answer in 20 seconds')), 20_000)),
        ]);
      } catch (e) {
        throw new Error(`The browser could not reach its push service (${e.message}).`);
      }
      await call('push.subscribe', { endpoint: sub.endpoint, p256dh: b64url(sub.getKey('p256dh')), auth: b64url(sub.getKey('auth')) });
      $('notif-status').textContent = 'Notifications are on for this device.';
    } else {
      const sub = await currentSubscription();
      if (sub) {
        await call('push.unsubscribe', { endpoint: sub.endpoint }).catch(() => {});
        await sub.unsubscribe();
      }
      $('notif-status').textContent = 'Notifications are off for this device.';
    }
  } catch (e) {
    sw.checked = !sw.checked;
    err.textContent = e.kind ? errorText(e) : e.message;
  } finally {
    sw.disabled = false;
  }
});

for (const id of ['notif-text', 'notif-sender']) {
  $(id).addEventListener('change', async () => {
    try {
      await call('push.set_prefs', { hide_text: !$('notif-text').checked, hide_sender: !$('notif-sender').checked });
      $('notif-status').textContent = 'Saved.';
    } catch (err) { $('dlg-settings').querySelector('.error').textContent = errorText(err); }
  });
}

// The chat's own notification level and mute.
async function loadChatNotify(id) {
  try {
    const n = await call('push.chat', { chat_id: id });
    if (!state.open || state.open.id !== id) return;
    let v = n.level || 'all';
    if (n.muted_forever) v = 'mute:-1';
    else if (n.mute_until && n.mute_until > Date.now()) v = 'muted';
    const sel = $('chat-notify');
    let opt = sel.querySelector('option[value="muted"]');
    if (v === 'muted') {
      if (!opt) { opt = el('option', '', ''); opt.value = 'muted'; sel.append(opt); }
      opt.textContent = `Muted until ${new Date(n.mute_until).toLocaleString()}`;
    } else if (opt) opt.remove();
    sel.value = v;
  } catch { /* a server without push: the control stays at its default */ }
}

$('chat-notify').addEventListener('change', async () => {
  const chat = openChatObj();
  if (!chat) return;
  const v = $('chat-notify').value;
  const req = v.startsWith('mute:') ? { chat_id: chat.id, level: 'all', mute_for_ms: Number(v.slice(5)) } : { chat_id: chat.id, level: v, mute_for_ms: 0 };
  try {
    await call('push.set_chat', req);
  } catch (err) { $('send-error').textContent = errorText(err); }
  loadChatNotify(chat.id);
});

boot().catch((err) => {
  console.error(err);
  showBoot('The web client could not start: ' + errorText(err));
});
