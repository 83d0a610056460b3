//go:build js && wasm

package main

import (
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
	lock chan struct{} // one holder at a time: a Signal step is read, advanced and written back
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
	return &idbStore{db: db, lock: make(chan struct{}, 1)}, nil
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

// Lock implements client.SecretStore. It orders this tab's goroutines;
// two tabs of the same account share the database but are two devices'
// worth of code on one device's keys, which the page avoids by keeping
// one engine per tab and the SDK by re-reading sessions under the lock.
func (s *idbStore) Lock(ctx context.Context) (func(), error) {
	select {
	case s.lock <- struct{}{}:
		return func() { <-s.lock }, nil
	case <-ctx.Done():
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
			v = map[string]any{"message": ev.Message}
		case len(ev.Read) > 0:
			v = map[string]any{"read": ev.Read, "peer": ev.Peer}
		case ev.Err != nil:
			v = map[string]any{"error": herald.ErrorMessage(ev.Err)}
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
//	history {username}                → [SecretMessage], marking them read
//	stored {peer_id}                  → [SecretMessage], marking nothing
//	read {peer_id}                    → [SecretMessage] whose timers started
//	safety {username}, verify {username} → {number, verified, changed}
func (b *bridge) secretCall(args []js.Value) (any, error) {
	s, err := b.secret()
	if err != nil {
		return nil, err
	}
	var p struct {
		Username string `json:"username"`
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
		out, err = s.Send(ctx, p.Username, p.Text, client.SecretSendOptions{TTL: time.Duration(p.TTLms) * time.Millisecond})
	case "history":
		out, err = s.History(ctx, p.Username)
	case "stored":
		out, err = s.Stored(p.PeerID)
	case "read":
		out, err = s.MarkRead(ctx, p.PeerID)
	case "safety", "verify":
		var sn client.SafetyNumber
		if op == "verify" {
			sn, err = s.Verify(ctx, p.Username)
		} else {
			sn, err = s.SafetyNumber(ctx, p.Username)
		}
		out = map[string]any{"number": sn.Number, "verified": sn.Verified, "changed": sn.Changed}
	default:
		return nil, herald.Errorf(herald.Invalid, "no secret operation %q", op)
	}
	if err != nil {
		return nil, err
	}
	j, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return string(j), nil
}
