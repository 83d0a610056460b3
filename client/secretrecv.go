package client

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"go.mau.fi/libsignal/protocol"
	sigsession "go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/signalerror"
)

func msgKey(peer int64, id string) string {
	return "msg/" + strconv.FormatInt(peer, 10) + "/" + id
}

// putMessage stores m unless a message with its id is there already (a
// replayed envelope is not shown twice). The store is locked.
func (s *Secret) putMessage(m *SecretMessage) error {
	b, _ := json.Marshal(m)
	if err := s.kv.Put(msgKey(m.PeerID, m.ID), b); err != nil {
		return err
	}
	if m.ExpiresAt.IsZero() {
		return nil
	}
	// An index of timers, so Purge finds what is due without reading
	// every message.
	return s.kv.Put(fmt.Sprintf("expiry/%020d/%d/%s", m.ExpiresAt.UnixMilli(), m.PeerID, m.ID), nil)
}

// Purge deletes every message whose timer ran out, in every chat, and
// returns when the next one is due (zero if none is set). Receive runs it
// as timers fall due; a program that does not receive should call it.
func (s *Secret) Purge(ctx context.Context) (time.Time, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return time.Time{}, err
	}
	defer unlock()
	keys, err := s.kv.Keys("expiry/")
	if err != nil {
		return time.Time{}, err
	}
	sort.Strings(keys)
	now := s.opts.Now()
	for _, k := range keys {
		parts := strings.SplitN(strings.TrimPrefix(k, "expiry/"), "/", 3)
		if len(parts) != 3 {
			s.kv.Delete(k)
			continue
		}
		at, err1 := strconv.ParseInt(parts[0], 10, 64)
		peer, err2 := strconv.ParseInt(parts[1], 10, 64)
		if err1 != nil || err2 != nil {
			s.kv.Delete(k)
			continue
		}
		if due := time.UnixMilli(at); due.After(now) {
			return due, nil
		}
		if err := s.kv.Delete(msgKey(peer, parts[2])); err != nil {
			return time.Time{}, err
		}
		if err := s.kv.Delete(k); err != nil {
			return time.Time{}, err
		}
	}
	return time.Time{}, nil
}

func (s *Secret) wakePurge() {
	select {
	case s.purge <- struct{}{}:
	default:
	}
}

func (s *Secret) hasMessage(peer int64, id string) bool {
	_, ok, _ := s.kv.Get(msgKey(peer, id))
	return ok
}

// messages returns a chat's messages, oldest first, deleting those whose
// timer ran out. The store is locked.
func (s *Secret) messages(peer int64) ([]*SecretMessage, error) {
	keys, err := s.kv.Keys("msg/" + strconv.FormatInt(peer, 10) + "/")
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	var out []*SecretMessage
	for _, k := range keys {
		b, ok, err := s.kv.Get(k)
		if err != nil || !ok {
			continue
		}
		var m SecretMessage
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		if !m.ExpiresAt.IsZero() && !m.ExpiresAt.After(now) {
			if err := s.kv.Delete(k); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, &m)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].SentAt.Equal(out[j].SentAt) {
			return out[i].SentAt.Before(out[j].SentAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// History returns the secret chat with username as this device keeps it,
// oldest first: it first fetches what is queued on the server, then
// drops messages whose timer ran out. Incoming messages it returns count
// as read: their timers start, and the other devices are told.
func (s *Secret) History(ctx context.Context, username string) ([]*SecretMessage, error) {
	if err := s.Sync(ctx); err != nil {
		return nil, err
	}
	if gid, ok := ParseGroupChatID(username); ok {
		return s.MarkRead(ctx, -gid)
	}
	u, err := s.resolve(ctx, username)
	if err != nil {
		return nil, err
	}
	ms, err := s.MarkRead(ctx, u.Id)
	return ms, err
}

// MarkRead starts the timers of the unread incoming messages from peer,
// tells the sender's and this user's other devices so theirs start too,
// and returns the chat.
func (s *Secret) MarkRead(ctx context.Context, peer int64) ([]*SecretMessage, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	ms, err := s.messages(peer)
	if err != nil {
		unlock()
		return nil, err
	}
	now := s.opts.Now()
	var read []string
	for _, m := range ms {
		if !m.Outgoing && m.ReadAt.IsZero() {
			m.ReadAt = now
			if m.TTL > 0 {
				m.ExpiresAt = now.Add(m.TTL)
				read = append(read, m.ID)
			}
			if err := s.putMessage(m); err != nil {
				unlock()
				return nil, err
			}
		}
	}
	p, err := s.loadPeer(peer)
	unlock()
	if len(read) > 0 {
		s.wakePurge()
	}
	if err != nil || len(read) == 0 || p.Username == "" {
		return ms, err
	}
	u := &pb.User{Id: peer, Username: p.Username}
	_, err = s.fanOut(ctx, u, payload{V: 1, Kind: "r", ID: randomID(), Peer: peer, Sent: now.UnixMilli(), Read: read, ReadAt: now.UnixMilli()}, 0, nil)
	return ms, err
}

// Sync fetches and handles every envelope queued for this device.
func (s *Secret) Sync(ctx context.Context) error {
	for {
		var l pb.EnvelopeList
		if err := s.c.Call(ctx, "secret.fetch", &pb.FetchRequest{}, &l); err != nil {
			return err
		}
		var ids []int64
		for _, e := range l.Envelopes {
			s.handle(ctx, e)
			ids = append(ids, e.Id)
		}
		if len(ids) > 0 {
			if err := s.c.Call(ctx, "secret.ack", &pb.AckRequest{Ids: ids}, nil); err != nil {
				return err
			}
		}
		// Top up one-time prekeys if the server says they run low, and
		// rotate the signed prekey if it is due.
		if l.Keys != nil {
			unlock, err := s.lock(ctx)
			if err != nil {
				return err
			}
			err = s.maintain(ctx, l.Keys)
			unlock()
			if err != nil {
				return err
			}
		}
		if !l.More {
			return nil
		}
	}
}

// Receive runs until ctx ends or Close: it handles envelopes as they are
// pushed, fetches what was queued on every (re)connection, and reports
// on Events.
func (s *Secret) Receive(ctx context.Context) {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return
	}
	s.started = true
	s.mu.Unlock()
	go func() {
		defer close(s.done)
		// Timers are enforced here as they fall due, not only when a chat
		// is next opened: an expired message must not linger on disk. The
		// wall clock decides when to look; s.opts.Now decides what is due.
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		purge := func() {
			next, err := s.Purge(ctx)
			wait := time.Minute
			if err == nil && !next.IsZero() {
				wait = min(wait, max(next.Sub(s.opts.Now()), 10*time.Millisecond))
			}
			timer.Reset(wait)
		}
		s.Sync(ctx)
		purge()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.stop:
				return
			case <-s.c.Connected():
				s.Sync(ctx)
			case e := <-s.c.Envelopes():
				s.handle(ctx, e)
				s.c.Call(ctx, "secret.ack", &pb.AckRequest{Ids: []int64{e.Id}}, nil)
				continue
			case <-s.purge:
			case <-timer.C:
			}
			purge()
		}
	}()
}

// Close stops Receive.
func (s *Secret) Close() {
	s.mu.Lock()
	started := s.started
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.mu.Unlock()
	if started {
		<-s.done
	}
}

func (s *Secret) emit(ev SecretEvent) {
	select {
	case s.events <- ev:
	default: // the store has it; events are a convenience
	}
}

// handle decrypts one envelope and stores what it says. Failures are
// reported on Events and the envelope is dropped: a tampered or replayed
// envelope can never decrypt later, and must not block the queue.
func (s *Secret) handle(ctx context.Context, e *pb.Envelope) {
	s.mu.Lock()
	if s.seen[e.Id] {
		s.mu.Unlock()
		return
	}
	if len(s.seen) > 100_000 {
		clear(s.seen)
	}
	s.seen[e.Id] = true
	s.mu.Unlock()
	unlock, err := s.lock(ctx)
	if err != nil {
		s.emit(SecretEvent{Err: err})
		return
	}
	ev, err := s.open(ctx, e)
	unlock()
	s.askForKeys(ctx)
	if err != nil {
		// Peer says which chat a held message belongs to, so a client
		// can show the key change there.
		s.emit(SecretEvent{Err: err, Peer: e.SenderId})
		return
	}
	if ev != nil {
		s.emit(*ev)
	}
}

// Open decrypts and stores one envelope as Receive would, and says what
// it held; nil with no error for a replay of one already opened. It is
// for programs that fetch envelopes themselves; it does not acknowledge.
func (s *Secret) Open(ctx context.Context, e *pb.Envelope) (*SecretEvent, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	ev, err := s.open(ctx, e)
	unlock()
	s.askForKeys(ctx)
	return ev, err
}

func (s *Secret) open(ctx context.Context, e *pb.Envelope) (*SecretEvent, error) {
	me, _ := s.c.Self()
	if herald.EnvelopeType(e.Type) == herald.EnvelopeSenderKey {
		return s.openGroup(ctx, e)
	}
	addr := protocol.NewSignalAddress(strconv.FormatInt(e.SenderId, 10), uint32(e.SenderDevice))
	cipher := sigsession.NewCipher(s.builder(addr), addr)
	var plain []byte
	var err error
	switch herald.EnvelopeType(e.Type) {
	case herald.EnvelopePreKey:
		var m *protocol.PreKeySignalMessage
		m, err = protocol.NewPreKeySignalMessageFromBytes(e.Body, s.sig.ser.PreKeySignalMessage, s.sig.ser.SignalMessage)
		if err != nil {
			break
		}
		// A new session from a device whose key is not the pinned one
		// is not opened: it waits for the person to accept the change,
		// as libsignal's untrusted identity says.
		var ok bool
		if ok, err = s.sig.IsTrustedIdentity(ctx, addr, m.IdentityKey()); err != nil {
			return nil, err
		}
		if !ok {
			if err := s.markChanged(addr, m.IdentityKey()); err != nil {
				return nil, err
			}
			if err := s.hold(addr, e); err != nil {
				return nil, err
			}
			who := e.SenderUsername
			if e.SenderId == me {
				who = ""
			}
			return nil, keyChangedError(who, e.SenderDevice)
		}
		plain, err = cipher.DecryptMessage(ctx, m)
	case herald.EnvelopeWhisper:
		var m *protocol.SignalMessage
		m, err = protocol.NewSignalMessageFromBytes(e.Body, s.sig.ser.SignalMessage)
		if err == nil {
			plain, err = cipher.Decrypt(ctx, m)
		}
	default:
		err = errors.New("unknown envelope type")
	}
	if errors.Is(err, signalerror.ErrOldCounter) || (err != nil && strings.Contains(err.Error(), "duplicate")) {
		return nil, nil // a replay: already shown once
	}
	if err != nil {
		return nil, herald.Errorf(herald.Invalid, "a secret envelope from @%s (device %d) does not decrypt and was dropped: %v", e.SenderUsername, e.SenderDevice, err)
	}
	plain, err = unpad(plain)
	var p payload
	if err == nil {
		err = json.Unmarshal(plain, &p)
	}
	if err != nil {
		return nil, herald.Errorf(herald.Invalid, "a secret message from @%s is malformed", e.SenderUsername)
	}
	peerID := e.SenderId
	if e.SenderId == me {
		peerID = p.Peer
	} else if p.Peer != me {
		return nil, herald.Errorf(herald.Invalid, "a secret message from @%s names another recipient and was dropped", e.SenderUsername)
	}
	peer, err := s.loadPeer(peerID)
	if err != nil {
		return nil, err
	}
	warn := ""
	if e.SenderId != me && !slices.Contains(peer.Devices, e.SenderDevice) {
		if !slices.Contains(peer.Devices, e.SenderDevice) {
			peer.Devices = append(peer.Devices, e.SenderDevice)
		}
		if peer.Username == "" {
			peer.Username = e.SenderUsername
		}
		if warn, err = s.updateSafety(ctx, peer); err != nil {
			return nil, err
		}
	} else if e.SenderId == me && !slices.Contains(peer.Own, e.SenderDevice) && peer.ID != 0 {
		peer.Own = append(peer.Own, e.SenderDevice)
		if err := s.savePeer(peer); err != nil {
			return nil, err
		}
	}
	switch p.Kind {
	case "gs", "gk", "gq":
		return s.openGroupPayload(ctx, e, p)
	case "r":
		var done []string
		at := time.UnixMilli(p.ReadAt).UTC()
		for _, id := range p.Read {
			b, ok, _ := s.kv.Get(msgKey(peerID, id))
			var m SecretMessage
			if !ok || json.Unmarshal(b, &m) != nil || !m.ReadAt.IsZero() || m.TTL == 0 {
				continue
			}
			m.ReadAt, m.ExpiresAt = at, at.Add(m.TTL)
			if err := s.putMessage(&m); err != nil {
				return nil, err
			}
			done = append(done, id)
		}
		if len(done) > 0 {
			s.wakePurge()
		}
		return &SecretEvent{Read: done, Peer: peerID}, nil
	case "m":
		if s.hasMessage(peerID, p.ID) {
			return nil, nil
		}
		if p.File == nil && herald.ValidateText(p.Text) != nil {
			return nil, herald.Errorf(herald.Invalid, "a secret message from @%s is empty or too long", e.SenderUsername)
		}
		m := &SecretMessage{
			ID: p.ID, ChatID: ChatID(me, peerID), PeerID: peerID, Peer: peer.Username, Outgoing: e.SenderId == me,
			FromID: e.SenderId, From: e.SenderUsername, FromDevice: e.SenderDevice, Text: p.Text, File: p.File,
			SentAt: time.UnixMilli(p.Sent).UTC(), TTL: time.Duration(p.TTL) * time.Millisecond, Warning: warn,
		}
		if m.Outgoing && m.Peer == "" && p.Name != "" {
			m.Peer, peer.Username = p.Name, p.Name
			if err := s.savePeer(peer); err != nil {
				return nil, err
			}
		}
		if err := s.putMessage(m); err != nil {
			return nil, err
		}
		return &SecretEvent{Message: m, Peer: peerID}, nil
	}
	return nil, nil
}

// SafetyNumber is what two people compare to know no one sits between
// them: 60 digits computed from the identity keys of both people's
// devices, the same on both sides.
type SafetyNumber struct {
	Number   string // twelve groups of five digits
	Verified bool   // confirmed with Verify since it last changed
	Changed  bool   // it changed since the chat began (a device was added, removed or re-created)
	// KeyChanged, if set, says which device has a new identity key that
	// waits for Accept; nothing is sent to that device until then.
	KeyChanged string
}

// fingerprintIterations is Signal's number of SHA-512 rounds for a
// safety number's half: the work that makes a chosen collision costly.
const fingerprintIterations = 5200

// half computes one person's 30 bytes of a safety number as Signal's
// NumericFingerprintGenerator does, over all their devices' identity
// keys in a fixed order (libsignal-go ships the display, not the
// generator).
func half(userID int64, keys [][]byte) []byte {
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, bytes.Compare)
	all := bytes.Join(sorted, nil)
	h := sha512.New()
	h.Write([]byte{0, 0})
	h.Write(all)
	h.Write([]byte(strconv.FormatInt(userID, 10)))
	sum := h.Sum(nil)
	for range fingerprintIterations {
		h.Reset()
		h.Write(sum)
		h.Write(all)
		sum = h.Sum(nil)
	}
	return sum[:30]
}

// updateSafety recomputes the safety number with peer and, if it changed,
// clears the verified mark and returns the warning to show. The store is
// locked; peer is saved.
func (s *Secret) updateSafety(ctx context.Context, peer *peerInfo) (string, error) {
	num, err := s.computeSafety(peer)
	if err != nil {
		return "", err
	}
	warn := ""
	if peer.Safety != "" && peer.Safety != num {
		warn = "the safety number with @" + peer.Username + " changed: a device was added, removed or re-created; verify it again"
		peer.Verified, peer.Changed = false, true
	}
	peer.Safety = num
	return warn, s.savePeer(peer)
}

// SafetyNumber returns the current safety number with username.
func (s *Secret) SafetyNumber(ctx context.Context, username string) (SafetyNumber, error) {
	u, _, _, err := s.start(ctx, username, true)
	if err != nil {
		return SafetyNumber{}, err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return SafetyNumber{}, err
	}
	defer unlock()
	p, err := s.loadPeer(u.Id)
	if err != nil {
		return SafetyNumber{}, err
	}
	return s.safetyOf(p)
}

// Verify marks the safety number with username as compared in person.
// It stays verified until it changes.
func (s *Secret) Verify(ctx context.Context, username string) (SafetyNumber, error) {
	sn, err := s.SafetyNumber(ctx, username)
	if err != nil {
		return sn, err
	}
	u, err := s.resolve(ctx, username)
	if err != nil {
		return sn, err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return sn, err
	}
	defer unlock()
	p, err := s.loadPeer(u.Id)
	if err != nil {
		return sn, err
	}
	if err := s.checkUnchanged(p); err != nil {
		// The number shown is the one of the keys pinned before the
		// change: confirming it would verify nothing.
		return sn, err
	}
	p.Verified, p.Changed = true, false
	sn.Verified, sn.Changed = true, false
	return sn, s.savePeer(p)
}

// SecretPeer is someone this device has a secret chat with.
type SecretPeer struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	ChatID   string `json:"chat_id"`
}

// Peers lists the secret chats this device keeps, so a client can show
// them after a restart without asking the server (which does not know
// them).
func (s *Secret) Peers(ctx context.Context) ([]SecretPeer, error) {
	keys, err := s.kv.Keys("peer/")
	if err != nil {
		return nil, err
	}
	me, err := s.c.Me(ctx)
	if err != nil {
		return nil, err
	}
	var out []SecretPeer
	for _, k := range keys {
		id, err := strconv.ParseInt(strings.TrimPrefix(k, "peer/"), 10, 64)
		if err != nil {
			continue
		}
		p, err := s.loadPeer(id)
		if err != nil || p.Username == "" {
			continue
		}
		out = append(out, SecretPeer{ID: id, Username: p.Username, ChatID: ChatID(me.Id, id)})
	}
	return out, nil
}

// Stored returns the secret chat with peer as this device keeps it,
// oldest first, without fetching from the server or marking anything
// read: what a chat list shows before the person opens the chat, whose
// timers must not start until they do.
func (s *Secret) Stored(peer int64) ([]*SecretMessage, error) {
	return s.messages(peer)
}

// Message returns one message of the secret chat with peer as this
// device keeps it (a NotFound error if it is not there, or its timer ran
// out), without marking anything read: what a client looks up to
// download the attachment of a message it shows.
func (s *Secret) Message(peer int64, id string) (*SecretMessage, error) {
	b, ok, err := s.kv.Get(msgKey(peer, id))
	if err != nil {
		return nil, err
	}
	var m SecretMessage
	if !ok || json.Unmarshal(b, &m) != nil || (!m.ExpiresAt.IsZero() && !m.ExpiresAt.After(s.opts.Now())) {
		return nil, herald.Errorf(herald.NotFound, "no such secret message (its timer may have run out)")
	}
	return &m, nil
}
