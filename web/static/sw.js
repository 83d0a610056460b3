// Herald's service worker (docs/NOTIFICATIONS.md, docs/WEB.md). It does
// three things:
//   1. keeps the app shell (the page, its scripts and styles, the engine)
//      so the app opens without a network, into the chat list;
//   2. shows the notifications that Web Push delivers while no tab is
//      open, and takes them down when the server withdraws them;
//   3. opens the chat a notification names when it is clicked.
// It never sees a session token or message history: a push payload is
// all it reads, and the server already chose what that may contain.

const SHELL = 'herald-shell-v1';
// Every script and style the page loads (web.TestServiceWorkerKeepsShell
// checks the list against web/static).
const FILES = ['/', '/app.js', '/calls.js', '/format.js', '/icons.js', '/loader.js', '/markdown.js', '/rich.js', '/style.css',
  '/wasm_exec.js', '/icon.svg', '/icon-192.png', '/manifest.webmanifest'];

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL);
    await cache.addAll(FILES);
    // The page names the engine by its content hash in its preload link.
    const page = await (await cache.match('/')).text();
    const m = page.match(/<link rel="preload" href="([^"]+\.wasm)"/);
    if (m) await cache.add('/' + m[1].replace(/^\//, ''));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== SHELL) await caches.delete(key);
    await self.clients.claim();
  })());
});

// The shell: network first (the server revalidates every file, so a new
// version shows at once), the cache when the network fails. The engine's
// content-addressed path never changes meaning: cache first. Nothing
// else (the socket, files, the API) is touched.
self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== location.origin) return;
  const path = req.mode === 'navigate' ? '/' : url.pathname;
  const engine = /^\/herald\.[A-Za-z0-9_-]+\.wasm$/.test(path);
  if (!engine && !FILES.includes(path)) return;
  event.respondWith((async () => {
    const cache = await caches.open(SHELL);
    if (engine) {
      const hit = await cache.match(path);
      if (hit) return hit;
    }
    try {
      const res = await fetch(req);
      if (res.ok && res.type === 'basic') await cache.put(path, res.clone());
      return res;
    } catch (err) {
      const hit = await cache.match(path);
      if (hit) return hit;
      throw err;
    }
  })());
});

// A push's payload is JSON (docs/NOTIFICATIONS.md): a message, a
// withdrawal of messages deleted or expired, or a secret chat's wake-up.
self.addEventListener('push', (event) => {
  let p = {};
  try { p = event.data ? event.data.json() : {}; } catch { p = {}; }
  event.waitUntil(handlePush(p));
});

const tagOf = (chat, seq) => `m-${chat}-${seq}`;

async function handlePush(p) {
  if (p.kind === 'withdraw') {
    const tags = new Set((p.seqs || []).map((s) => tagOf(p.chat_id, s)));
    for (const n of await self.registration.getNotifications()) {
      if (tags.has(n.tag)) n.close();
    }
    return;
  }
  if (p.kind === 'wake') {
    // A secret message: the push knows nothing of it. The open app
    // fetches and decrypts it; here only the fact is shown.
    return self.registration.showNotification('Herald', {
      body: 'New secret message', tag: 'secret', icon: '/icon-192.png', data: { url: '/' },
    });
  }
  if (p.kind !== 'message') return;
  // A focused window already shows the message.
  const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  if (wins.some((w) => w.focused && w.visibilityState === 'visible')) return;
  const body = p.sender ? `${p.sender}: ${p.body || ''}` : (p.body || '');
  return self.registration.showNotification(p.title || 'Herald', {
    body, tag: tagOf(p.chat_id, p.seq), icon: '/icon-192.png', timestamp: p.at || Date.now(),
    data: { url: `/#chat=${p.chat_id}`, chat_id: p.chat_id },
  });
}

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  event.waitUntil(openChat(data.url || '/', data.chat_id));
});

// openChat focuses a window of the app and tells it which chat to open,
// or opens one at that chat.
async function openChat(url, chatId) {
  const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  for (const w of wins) {
    if (new URL(w.url).origin !== location.origin) continue;
    if (chatId) w.postMessage({ type: 'open-chat', chat_id: chatId });
    return w.focus();
  }
  return self.clients.openWindow(url);
}
