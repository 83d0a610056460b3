//go:build js && wasm

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"syscall/js"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
)

// idbStore is the SDK's SecretStore in IndexedDB: the device's identity
// key, prekeys, Signal sessions and decrypted secret messages stay in this
// browser and are never sent to the server. One object store "kv" holds
// the SDK's keys ("session/12.3"…) with byte values. IndexedDB is
// asynchronous; each call waits for its request on a channel, from the
// goroutine the page's Promise runs on.
type idbStore struct {
	db   js.Value
	lock chan struct{} // one holder at a time in this tab: a Signal step is read, advanced and written back
	// locks is navigator.locks (the Web Locks API), which orders the tabs
	// of this browser that share the database; undefined where missing.
	locks js.Value
	name  string // the database's name, which is also the Web Lock's: one per account
}

// idbRequest waits for an IDBRequest (or IDBTransaction, with complete
// instead of success) to finish.
func idbRequest(req js.Value, done string) (js.Value, error) {
	ok := make(chan js.Value, 1)
	bad := make(chan error, 1)
	onOK := js.FuncOf(func(js.Value, []js.Value) any {
		if done == "success" {
			ok <- req.Get("result")
		} else {
			ok <- js.Undefined()
		}
		return nil
	})
	onErr := js.FuncOf(func(js.Value, []js.Value) any {
		msg := "IndexedDB failed"
		if e := req.Get("error"); e.Truthy() {
			msg += ": " + e.Get("message").String()
		}
		bad <- herald.Errorf(herald.Unavailable, "%s", msg)
		return nil
	})
	defer onOK.Release()
	defer onErr.Release()
	req.Set("on"+done, onOK)
	req.Set("onerror", onErr)
	if done == "complete" {
		req.Set("onabort", onErr)
	}
	select {
	case v := <-ok:
		return v, nil
	case err := <-bad:
		return js.Undefined(), err
	}
}

// openIDB opens (creating on first use) the database name.
func openIDB(name string) (*idbStore, error) {
	idb := js.Global().Get("indexedDB")
	if !idb.Truthy() {
		return nil, herald.Errorf(herald.Unavailable, "this browser has no IndexedDB (a private window?): secret chats need it to keep their keys")
	}
	req := idb.Call("open", name, 1)
	upgrade := js.FuncOf(func(js.Value, []js.Value) any {
		db := req.Get("result")
		if !db.Get("objectStoreNames").Call("contains", "kv").Bool() {
			db.Call("createObjectStore", "kv")
		}
		return nil
	})
	defer upgrade.Release()
	req.Set("onupgradeneeded", upgrade)
	db, err := idbRequest(req, "success")
	if err != nil {
		return nil, err
	}
	locks := js.Global().Get("navigator").Get("locks")
	if !locks.Truthy() || locks.Get("request").Type() != js.TypeFunction {
		// Said once, where a developer looks; the page still works in a
		// single tab, which is what every browser that lacks the API
		// (none current) would have to keep to.
		js.Global().Get("console").Call("warn", "herald: this browser has no Web Locks API (navigator.locks); keep one tab of this account open: two tabs using secret chats at once can break their sessions")
		locks = js.Undefined()
	}
	return &idbStore{db: db, lock: make(chan struct{}, 1), locks: locks, name: name}, nil
}

func (s *idbStore) store(mode string) (tx, st js.Value) {
	tx = s.db.Call("transaction", "kv", mode)
	return tx, tx.Call("objectStore", "kv")
}

// Get implements client.SecretStore.
func (s *idbStore) Get(key string) ([]byte, bool, error) {
	_, st := s.store("readonly")
	v, err := idbRequest(st.Call("get", key), "success")
	if err != nil {
		return nil, false, err
	}
	if v.IsUndefined() || v.IsNull() {
		return nil, false, nil
	}
	u8 := js.Global().Get("Uint8Array").New(v)
	out := make([]byte, u8.Length())
	js.CopyBytesToGo(out, u8)
	return out, true, nil
}

// Put implements client.SecretStore; it returns once the transaction is
// complete, i.e. durable.
func (s *idbStore) Put(key string, value []byte) error {
	u8 := js.Global().Get("Uint8Array").New(len(value))
	js.CopyBytesToJS(u8, value)
	tx, st := s.store("readwrite")
	st.Call("put", u8, key)
	_, err := idbRequest(tx, "complete")
	return err
}

// Delete implements client.SecretStore.
func (s *idbStore) Delete(key string) error {
	tx, st := s.store("readwrite")
	st.Call("delete", key)
	_, err := idbRequest(tx, "complete")
	return err
}

// Keys implements client.SecretStore with a key range: every string
// starting with prefix sorts between prefix and prefix+U+FFFF.
func (s *idbStore) Keys(prefix string) ([]string, error) {
	_, st := s.store("readonly")
	var req js.Value
	if prefix == "" {
		req = st.Call("getAllKeys")
	} else {
		req = st.Call("getAllKeys", js.Global().Get("IDBKeyRange").Call("bound", prefix, prefix+"\uffff"))
	}
	v, err := idbRequest(req, "success")
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, v.Length())
	for i := range v.Length() {
		out = append(out, v.Index(i).String())
	}
	return out, nil
}

// Lock implements client.SecretStore. It first takes this tab's lock,
// which keeps the order of the tab's own goroutines, then the Web Lock
// named after the database (navigator.locks.request), which every tab of
// this browser logged in to the same account asks for: the tabs are one
// device with one set of Signal sessions, and two of them advancing a
// session at once would lose one's step (a message key used twice, a
// ratchet written back stale). A second tab waits here until the first
// has written its step back. The Web Lock is held until unlock resolves
// the Promise its callback returned; the browser also frees it when the
// tab holding it closes or crashes.
func (s *idbStore) Lock(ctx context.Context) (func(), error) {
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	local := func() { <-s.lock }
	if s.locks.IsUndefined() {
		return local, nil
	}
	release, err := s.webLock(ctx)
	if err != nil {
		local()
		return nil, err
	}
	return func() { release(); local() }, nil
}

// webLock asks for the Web Lock s.name and waits until it is granted or
// ctx ends (then the request is aborted).
func (s *idbStore) webLock(ctx context.Context) (func(), error) {
	// The Promise the lock callback returns, and the function that
	// settles it: the lock is held until then.
	var settle js.Value
	exec := js.FuncOf(func(_ js.Value, a []js.Value) any { settle = a[0]; return nil })
	held := js.Global().Get("Promise").New(exec)
	exec.Release()

	granted := make(chan struct{}, 1)
	failed := make(chan error, 1)
	cb := js.FuncOf(func(js.Value, []js.Value) any {
		granted <- struct{}{}
		return held
	})
	catch := js.FuncOf(func(_ js.Value, a []js.Value) any {
		msg := "the Web Lock was refused"
		if e := arg(a, 0); e.Type() == js.TypeObject {
			msg += ": " + e.Call("toString").String()
		}
		failed <- herald.Errorf(herald.Unavailable, "%s", msg)
		return nil
	})
	abort := js.Global().Get("AbortController").New()
	s.locks.Call("request", s.name, map[string]any{"mode": "exclusive", "signal": abort.Get("signal")}, cb).Call("catch", catch)
	release := func() {
		settle.Invoke()
		cb.Release()
		catch.Release()
	}
	select {
	case <-granted:
		return release, nil
	case err := <-failed:
		cb.Release()
		catch.Release()
		return nil, err
	case <-ctx.Done():
		abort.Call("abort")
		// The grant may have raced the abort: then give the lock back.
		select {
		case <-granted:
			release()
		case <-failed:
			cb.Release()
			catch.Release()
		}
		return nil, ctx.Err()
	}
}

// secretState is the page's secret chats for one client: made after the
// client authenticated, ready once the keys exist and are published.
type secretState struct {
	ready chan struct{}
	s     *client.Secret
	err   error
}

// startSecret opens the device's secret-chat store and keys in the
// background (a first login makes and publishes a hundred prekeys, which
// must not hold up the chat list), then receives envelopes and hands the
// decrypted messages to the page as "secret" events.
func (b *bridge) startSecret(c *client.Client, gen int, h handlers) {
	st := &secretState{ready: make(chan struct{})}
	b.mu.Lock()
	old := b.sec
	b.sec = st
	b.mu.Unlock()
	closeSecret(old)
	go func() {
		defer close(st.ready)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		me, err := c.Me(ctx)
		if err != nil {
			st.err = err
			return
		}
		// One database per account, so a second account in the same
		// browser never reads the first one's keys.
		store, err := openIDB("herald-secret-" + strconv.FormatInt(me.Id, 10))
		if err != nil {
			st.err = err
			return
		}
		s := client.NewSecret(c, client.SecretOptions{Store: store})
		if err := s.Init(ctx); err != nil {
			st.err = err
			return
		}
		st.s = s
		s.Receive(context.Background())
		go b.pumpSecret(s, gen, h)
	}()
}

// pumpSecret hands the page new secret messages and started timers.
func (b *bridge) pumpSecret(s *client.Secret, gen int, h handlers) {
	for ev := range s.Events() {
		b.mu.Lock()
		current := b.gen == gen
		b.mu.Unlock()
		if !current {
			return
		}
		if h.onEvent.Type() != js.TypeFunction {
			continue
		}
		var v any
		switch {
		case ev.Message != nil:
			v = map[string]any{"message": withoutKeys(ev.Message)}
		case len(ev.Read) > 0:
			v = map[string]any{"read": ev.Read, "peer": ev.Peer}
		case ev.Err != nil:
			v = map[string]any{"error": herald.ErrorMessage(ev.Err), "kind": string(herald.ErrorKind(ev.Err)), "peer": ev.Peer}
		default:
			continue
		}
		j, _ := json.Marshal(v)
		h.onEvent.Invoke("secret", string(j))
	}
}

func (b *bridge) secret() (*client.Secret, error) {
	b.mu.Lock()
	st := b.sec
	b.mu.Unlock()
	if st == nil {
		return nil, herald.Errorf(herald.Unauthenticated, "not logged in")
	}
	<-st.ready
	if st.err != nil {
		return nil, herald.Errorf(herald.ErrorKind(st.err), "secret chats are not available on this device: %s", herald.ErrorMessage(st.err))
	}
	return st.s, nil
}

// secretCall(op, JSON params) runs one secret-chat operation and resolves
// with JSON:
//
//	chats {}                          → [{id, username, chat_id}]
//	start {username}                  → {chat_id}
//	send {username, text, ttl_ms}     → SecretMessage
//	send {…} with a File and onProgress(done, total) as the third and
//	     fourth arguments: the file is encrypted here and its ciphertext
//	     uploaded (the text is its caption)  → SecretMessage
//	download {peer_id, id}            → Uint8Array: the message's file,
//	     fetched, decrypted and checked against its SHA-256
//	history {username}                → [SecretMessage], marking them read
//	stored {peer_id}                  → [SecretMessage], marking nothing
//	read {peer_id}                    → [SecretMessage] whose timers started
//	keychange {peer_id}               → {key_changed}: "" unless a device's
//	     new identity key waits for accept (asks nothing of the server)
//	safety {username}, verify {username}, accept {username}
//	     → {number, verified, changed, key_changed}: key_changed is the
//	     sentence to show while a device's new identity key waits for
//	     accept (verify then fails with KEY_CHANGED)
func (b *bridge) secretCall(args []js.Value) (any, error) {
	s, err := b.secret()
	if err != nil {
		return nil, err
	}
	var p struct {
		Username string `json:"username"`
		ID       string `json:"id"`
		Text     string `json:"text"`
		TTLms    int64  `json:"ttl_ms"`
		PeerID   int64  `json:"peer_id"`
	}
	if raw := str(arg(args, 1)); raw != "" {
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			return nil, herald.Errorf(herald.Invalid, "bad parameters: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out any
	switch op := str(arg(args, 0)); op {
	case "chats":
		out, err = s.Peers(ctx)
	case "start":
		var id string
		id, err = s.Start(ctx, p.Username)
		out = map[string]string{"chat_id": id}
	case "send":
		opts := client.SecretSendOptions{TTL: time.Duration(p.TTLms) * time.Millisecond}
		if blob := arg(args, 2); blob.Type() == js.TypeObject {
			if err := secretFileOptions(&opts, blob, arg(args, 3)); err != nil {
				return nil, err
			}
			// A file takes longer than a text to encrypt and upload.
			ctx, cancel = context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
		}
		out, err = s.Send(ctx, p.Username, p.Text, opts)
	case "download":
		return secretDownload(ctx, s, p.PeerID, p.ID)
	case "history":
		out, err = s.History(ctx, p.Username)
	case "stored":
		out, err = s.Stored(p.PeerID)
	case "read":
		out, err = s.MarkRead(ctx, p.PeerID)
	case "keychange":
		var msg string
		msg, err = s.PendingChange(ctx, p.PeerID)
		out = map[string]string{"key_changed": msg}
	case "safety", "verify", "accept":
		var sn client.SafetyNumber
		switch op {
		case "verify":
			sn, err = s.Verify(ctx, p.Username)
		case "accept":
			sn, err = s.Accept(ctx, p.Username)
		default:
			sn, err = s.SafetyNumber(ctx, p.Username)
		}
		out = map[string]any{"number": sn.Number, "verified": sn.Verified, "changed": sn.Changed, "key_changed": sn.KeyChanged}
	default:
		return nil, herald.Errorf(herald.Invalid, "no secret operation %q", op)
	}
	if err != nil {
		return nil, err
	}
	j, err := json.Marshal(withoutKeys(out))
	if err != nil {
		return nil, err
	}
	return string(j), nil
}

// maxSecretFile is the largest file the web client sends or opens in a
// secret chat. The browser has no temporary files, so the engine holds
// the ciphertext in memory while it uploads it, and a download's
// ciphertext and plaintext at once; the CLI, which spools to disk, has
// the server's limit instead.
const maxSecretFile = 100 << 20

// secretFileOptions makes opts send the File or Blob blob, reporting the
// upload's progress to onProgress(done, total).
func secretFileOptions(opts *client.SecretSendOptions, blob, onProgress js.Value) error {
	if blob.Get("slice").Type() != js.TypeFunction {
		return herald.Errorf(herald.Invalid, "a secret file must be a File")
	}
	r := newBlobReader(blob)
	if r.size > maxSecretFile {
		return herald.Errorf(herald.TooLarge, "a file in a secret chat can have at most %d MiB in the web client (the herald command line sends larger ones)", maxSecretFile>>20)
	}
	opts.File, opts.FileSize, opts.FileName = r, r.size, str(blob.Get("name"))
	if onProgress.Type() == js.TypeFunction {
		opts.Progress = func(done, total int64) { onProgress.Invoke(float64(done), float64(total)) }
	}
	return nil
}

// secretDownload fetches, decrypts and checks the file of a stored secret
// message and hands its bytes to the page, which shows them through a
// Blob: the plaintext exists only in this tab's memory.
func secretDownload(ctx context.Context, s *client.Secret, peer int64, id string) (any, error) {
	m, err := s.Message(peer, id)
	if err != nil {
		return nil, err
	}
	if m.File == nil {
		return nil, herald.Errorf(herald.Invalid, "this secret message has no file")
	}
	if m.File.Size > maxSecretFile {
		return nil, herald.Errorf(herald.TooLarge, "this file has more than %d MiB: open it with the herald command line", maxSecretFile>>20)
	}
	var buf bytes.Buffer
	buf.Grow(int(m.File.Size))
	if err := s.Download(ctx, m.File, &buf); err != nil {
		return nil, err
	}
	u8 := js.Global().Get("Uint8Array").New(buf.Len())
	js.CopyBytesToJS(u8, buf.Bytes())
	return u8, nil
}

// withoutKeys returns what goes to the page with the files' keys left
// out: the page asks the engine to open a file by its message, so the
// key that decrypts it never needs to leave the engine.
func withoutKeys(v any) any {
	strip := func(m *client.SecretMessage) *client.SecretMessage {
		if m == nil || m.File == nil {
			return m
		}
		c, f := *m, *m.File
		f.Key = ""
		c.File = &f
		return &c
	}
	switch v := v.(type) {
	case *client.SecretMessage:
		return strip(v)
	case []*client.SecretMessage:
		out := make([]*client.SecretMessage, len(v))
		for i, m := range v {
			out[i] = strip(m)
		}
		return out
	}
	return v
}
