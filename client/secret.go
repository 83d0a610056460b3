package client

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/logger"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/serialize"
	sigsession "go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/util/keyhelper"
	"go.mau.fi/libsignal/util/optional"
)

// SecretOptions configure a device's secret chats.
type SecretOptions struct {
	// Store keeps the device's keys, sessions and messages (required).
	Store SecretStore
	// PreKeys is how many one-time prekeys are made at a time (default 100).
	PreKeys int
	// RotateEvery is how old the signed prekey may get before a new one is
	// made and published (default 7 days, as Signal's clients do).
	RotateEvery time.Duration
	// Now returns the time; tests replace it to move self-destruct timers.
	Now func() time.Time
}

// SecretFile is an encrypted attachment as a secret message describes
// it. Key decrypts the blob the server holds; it travels only inside the
// Signal ciphertext.
type SecretFile struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex of the plaintext's SHA-256
	Key    string `json:"key"`    // the age identity the file is encrypted to
}

// SecretMessage is a decrypted secret message as this device keeps it.
type SecretMessage struct {
	ID         string        `json:"id"` // the sender's random id, the same on every device
	ChatID     string        `json:"chat_id"`
	PeerID     int64         `json:"peer_id"` // the other person
	Peer       string        `json:"peer"`
	Outgoing   bool          `json:"outgoing"`
	FromID     int64         `json:"from_id"`
	From       string        `json:"from"`
	FromDevice int64         `json:"from_device"`
	Text       string        `json:"text"`
	File       *SecretFile   `json:"file,omitempty"`
	SentAt     time.Time     `json:"sent_at"`
	TTL        time.Duration `json:"ttl,omitempty"`
	ReadAt     time.Time     `json:"read_at,omitzero"`    // when the recipient read it: the timer's start
	ExpiresAt  time.Time     `json:"expires_at,omitzero"` // ReadAt + TTL
	Warning    string        `json:"warning,omitempty"`   // e.g. the safety number changed with this message
	GroupID    int64         `json:"group_id,omitempty"`  // a secret group's message (PeerID is then -GroupID)
	Event      string        `json:"event,omitempty"`     // a secret group's membership change: create, add, remove, leave
}

// SecretEvent is something that happened in a secret chat.
type SecretEvent struct {
	Message *SecretMessage // a new message (incoming, or sent from another of this user's devices)
	Read    []string       // ids whose timers started, in chat Peer
	Peer    int64          // the chat (for Err: the sender, which is this user for their own devices)
	Err     error          // an envelope could not be decrypted (tampered, from an unknown session, or KEY_CHANGED: held until Accept)
}

// Secret runs a device's secret chats on a Client: keys, sessions,
// encryption for every device, and the local store of messages.
type Secret struct {
	c    *Client
	kv   SecretStore
	sig  *signalStore
	opts SecretOptions

	mu      sync.Mutex
	events  chan SecretEvent
	seen    map[int64]bool // envelope ids handled since start (a push racing a fetch)
	started bool
	stop    chan struct{}
	done    chan struct{}
	purge   chan struct{} // a timer started: Receive looks again when the next is due
	asks    []keyAsk      // sender keys to ask for once the store is unlocked
}

// quiet replaces libsignal's logger, which writes to standard output,
// once: a library must not print, and its messages are not the user's.
var quiet sync.Once

type silent struct{}

func (silent) Debug(string, string)   {}
func (silent) Info(string, string)    {}
func (silent) Warning(string, string) {}
func (silent) Error(string, string)   {}
func (silent) Configure(string)       {}

// NewSecret returns the secret chats of the device c is logged in as.
func NewSecret(c *Client, opts SecretOptions) *Secret {
	quiet.Do(func() {
		var l logger.Loggable = silent{}
		logger.Setup(&l)
	})
	if opts.PreKeys <= 0 {
		opts.PreKeys = 100
	}
	if opts.RotateEvery <= 0 {
		opts.RotateEvery = 7 * 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Secret{
		c: c, kv: opts.Store, opts: opts,
		sig:    &signalStore{kv: opts.Store, ser: serialize.NewProtoBufSerializer()},
		events: make(chan SecretEvent, 256), seen: map[int64]bool{},
		stop: make(chan struct{}), done: make(chan struct{}), purge: make(chan struct{}, 1),
	}
}

// Events delivers new secret messages and read receipts once Start runs.
func (s *Secret) Events() <-chan SecretEvent { return s.events }

func (s *Secret) lock(ctx context.Context) (func(), error) { return s.kv.Lock(ctx) }

// Init makes the device's keys if it has none (an identity key pair, a
// signed prekey and a batch of one-time prekeys, all with libsignal) and
// publishes the public halves; afterwards it tops up one-time prekeys and
// rotates the signed prekey when due. Keys of another device found in
// the store (the home was logged in again as a new device) are wiped:
// each device has its own identity.
func (s *Secret) Init(ctx context.Context) error {
	if err := s.initKeys(ctx); err != nil {
		return err
	}
	// Every use of the device's secret chats starts by removing what
	// expired while nothing ran.
	_, err := s.Purge(ctx)
	return err
}

func (s *Secret) initKeys(ctx context.Context) error {
	uid, did := s.c.Self()
	if did == 0 {
		return herald.Errorf(herald.Unauthenticated, "log in before using secret chats")
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	li, err := s.sig.loadIdentity()
	if err != nil {
		return err
	}
	if li != nil && li.DeviceID != did {
		if err := s.wipe(); err != nil {
			return err
		}
		li = nil
	}
	if li == nil {
		kp, err := keyhelper.GenerateIdentityKeyPair()
		if err != nil {
			return err
		}
		if err := s.sig.saveIdentity(kp, keyhelper.GenerateRegistrationID(), uid, did); err != nil {
			return err
		}
		if err := s.rotateSigned(ctx, 1); err != nil {
			return err
		}
		return s.topUp(ctx, 0, true)
	}
	var st pb.KeyStatus
	if err := s.c.Call(ctx, "keys.status", &pb.Empty{}, &st); err != nil {
		return err
	}
	return s.maintain(ctx, &st)
}

func (s *Secret) wipe() error {
	keys, err := s.kv.Keys("")
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.kv.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// maintain tops up one-time prekeys when the server says they run low,
// and rotates the signed prekey when it is due. The store is locked.
func (s *Secret) maintain(ctx context.Context, st *pb.KeyStatus) error {
	if st == nil {
		return nil
	}
	cur, err := s.currentSigned()
	if err != nil {
		return err
	}
	if cur == nil || s.opts.Now().Sub(time.Unix(cur.at, 0)) >= s.opts.RotateEvery {
		next := uint32(1)
		if cur != nil {
			next = cur.id + 1
		}
		if err := s.rotateSigned(ctx, next); err != nil {
			return err
		}
	}
	if st.Low || st.SignedAt == 0 {
		return s.topUp(ctx, st.MaxPreKeyId, false)
	}
	return nil
}

type signedInfo struct {
	id uint32
	at int64
}

func (s *Secret) currentSigned() (*signedInfo, error) {
	recs, err := s.sig.LoadSignedPreKeys(context.Background())
	if err != nil {
		return nil, err
	}
	var cur *signedInfo
	for _, r := range recs {
		if cur == nil || r.ID() > cur.id {
			cur = &signedInfo{r.ID(), r.Timestamp()}
		}
	}
	return cur, nil
}

// rotateSigned makes signed prekey id, publishes it, and keeps the two
// before it: envelopes sent to them may still be in flight.
func (s *Secret) rotateSigned(ctx context.Context, id uint32) error {
	// As keyhelper.GenerateSignedPreKey, but stamped with this Secret's
	// clock, which decides when the next rotation is due.
	kp, err := ecc.GenerateKeyPair()
	if err != nil {
		return err
	}
	sig0 := ecc.CalculateSignature(s.sig.id.PrivateKey(), kp.PublicKey().Serialize())
	rec := record.NewSignedPreKey(id, s.opts.Now().Unix(), kp, sig0, s.sig.ser.SignedPreKeyRecord)
	if err := s.sig.StoreSignedPreKey(ctx, id, rec); err != nil {
		return err
	}
	sig := rec.Signature()
	req := &pb.PublishKeysRequest{
		IdentityKey: s.sig.id.PublicKey().Serialize(), RegistrationId: s.sig.reg,
		SignedPreKey: &pb.SignedPreKey{Id: id, PublicKey: rec.KeyPair().PublicKey().Serialize(), Signature: sig[:], CreatedAt: rec.Timestamp() * 1000},
	}
	if err := s.c.Call(ctx, "keys.publish", req, &pb.KeyStatus{}); err != nil {
		return err
	}
	for old := int64(id) - 3; old > 0; old-- {
		ok, _ := s.sig.ContainsSignedPreKey(ctx, uint32(old))
		if !ok {
			break
		}
		s.sig.RemoveSignedPreKey(ctx, uint32(old))
	}
	return nil
}

// topUp makes and publishes a batch of one-time prekeys numbered after
// both the server's highest and this device's.
func (s *Secret) topUp(ctx context.Context, serverMax uint32, first bool) error {
	start := serverMax + 1
	if b, ok, _ := s.kv.Get("prekey-next"); ok {
		if n, err := strconv.ParseUint(string(b), 10, 32); err == nil && uint32(n) > start {
			start = uint32(n)
		}
	}
	// libsignal's second argument is the last id, not a count.
	recs, err := keyhelper.GeneratePreKeys(int(start), int(start)+s.opts.PreKeys-1, s.sig.ser.PreKeyRecord)
	if err != nil {
		return err
	}
	cur, err := s.currentSigned()
	if err != nil || cur == nil {
		return fmt.Errorf("no signed prekey to publish with the one-time prekeys")
	}
	signed, err := s.sig.LoadSignedPreKey(ctx, cur.id)
	if err != nil {
		return err
	}
	sig := signed.Signature()
	req := &pb.PublishKeysRequest{
		IdentityKey: s.sig.id.PublicKey().Serialize(), RegistrationId: s.sig.reg,
		SignedPreKey: &pb.SignedPreKey{Id: cur.id, PublicKey: signed.KeyPair().PublicKey().Serialize(), Signature: sig[:], CreatedAt: signed.Timestamp() * 1000},
	}
	for _, r := range recs {
		if err := s.sig.StorePreKey(ctx, r.ID().Value, r); err != nil {
			return err
		}
		req.PreKeys = append(req.PreKeys, &pb.PreKey{Id: r.ID().Value, PublicKey: r.KeyPair().PublicKey().Serialize()})
	}
	if err := s.kv.Put("prekey-next", []byte(strconv.FormatUint(uint64(start)+uint64(len(recs)), 10))); err != nil {
		return err
	}
	return s.c.Call(ctx, "keys.publish", req, &pb.KeyStatus{})
}

// ChatID is the secret chat's id between two users: the same on every
// device of both, and never sent to the server.
func ChatID(a, b int64) string {
	if a > b {
		a, b = b, a
	}
	h := sha256.Sum256(fmt.Appendf(nil, "herald secret chat %d %d", a, b))
	return "s" + hex.EncodeToString(h[:8])
}

// peerInfo is what a device remembers of a secret chat's other person.
type peerInfo struct {
	ID       int64   `json:"id"`
	Username string  `json:"username"`
	Devices  []int64 `json:"devices"`     // theirs we have sessions with
	Own      []int64 `json:"own_devices"` // our other devices, when last sent
	Safety   string  `json:"safety"`      // the safety number when last computed
	Verified bool    `json:"verified"`    // confirmed in person since it last changed
	Changed  bool    `json:"changed"`     // it changed since it was first seen
}

func (s *Secret) loadPeer(id int64) (*peerInfo, error) {
	b, ok, err := s.kv.Get("peer/" + strconv.FormatInt(id, 10))
	if err != nil || !ok {
		return &peerInfo{ID: id}, err
	}
	var p peerInfo
	return &p, json.Unmarshal(b, &p)
}

func (s *Secret) savePeer(p *peerInfo) error {
	b, _ := json.Marshal(p)
	return s.kv.Put("peer/"+strconv.FormatInt(p.ID, 10), b)
}

func (s *Secret) resolve(ctx context.Context, username string) (*pb.User, error) {
	var u pb.User
	if err := s.c.Call(ctx, "users.resolve", &pb.ResolveRequest{Username: username}, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// Start opens (or reopens) the secret chat with username: it builds a
// Signal session with each of their devices and this user's other
// devices that it has none with yet, and returns the chat's id.
func (s *Secret) Start(ctx context.Context, username string) (string, error) {
	_, id, _, err := s.start(ctx, username, true)
	return id, err
}

// start is Start that also returns the peer and the warning to show if
// the safety number changed. With refresh it brings the device lists up
// to date (two requests) and recomputes the safety number (thousands of
// SHA-512 rounds); otherwise only when the chat is new, since sends learn
// of device changes from STALE_DEVICES.
func (s *Secret) start(ctx context.Context, username string, refresh bool) (*pb.User, string, string, error) {
	u, err := s.resolve(ctx, username)
	if err != nil {
		return nil, "", "", err
	}
	me, _ := s.c.Self()
	if u.Id == me {
		return nil, "", "", herald.Errorf(herald.Invalid, "a secret chat is between two people")
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, "", "", err
	}
	defer unlock()
	p, err := s.loadPeer(u.Id)
	if err != nil {
		return nil, "", "", err
	}
	p.Username = u.Username
	self, err := s.selfName(ctx)
	if err != nil {
		return nil, "", "", err
	}
	if len(p.Devices) == 0 {
		if p.Devices, err = s.buildSessions(ctx, u.Username, nil); err != nil {
			return nil, "", "", err
		}
		if p.Own, err = s.buildSessions(ctx, self, nil); err != nil {
			return nil, "", "", err
		}
	} else if refresh {
		if err := s.syncDevices(ctx, u, self, p); err != nil && !herald.IsKind(err, herald.KeyChanged) {
			return nil, "", "", err
		}
	}
	warn := ""
	if refresh || p.Safety == "" {
		if warn, err = s.updateSafety(ctx, p); err != nil {
			return nil, "", "", err
		}
	}
	return u, ChatID(me, u.Id), warn, s.savePeer(p)
}

func (s *Secret) selfName(ctx context.Context) (string, error) {
	if b, ok, _ := s.kv.Get("self-name"); ok {
		return string(b), nil
	}
	var u pb.User
	if err := s.c.Call(ctx, "users.me", &pb.Empty{}, &u); err != nil {
		return "", err
	}
	return u.Username, s.kv.Put("self-name", []byte(u.Username))
}

// buildSessions claims bundles for a user's devices (or those listed)
// and starts a session (X3DH) with each; it returns the devices. A
// device whose bundle carries an identity key other than the one pinned
// for it gets no new session: the change is recorded and, after the
// others are done, reported as a KeyChanged error.
func (s *Secret) buildSessions(ctx context.Context, username string, only []int64) ([]int64, error) {
	var bl pb.BundleList
	if err := s.c.Call(ctx, "keys.bundles", &pb.BundlesRequest{Username: username, DeviceIds: only}, &bl); err != nil {
		return nil, err
	}
	var out []int64
	var changed error
	for _, b := range bl.Bundles {
		if err := s.processBundle(ctx, b); err != nil {
			if !herald.IsKind(err, herald.KeyChanged) {
				return nil, herald.Errorf(herald.Invalid, "device %d of @%s has an unusable key bundle: %v", b.DeviceId, username, err)
			}
			if me, _ := s.c.Self(); b.UserId != me {
				err = keyChangedError(username, b.DeviceId)
			}
			changed = cmp.Or(changed, err)
		}
		out = append(out, b.DeviceId)
	}
	return out, changed
}

func (s *Secret) processBundle(ctx context.Context, b *pb.Bundle) error {
	ik, err := ecc.DecodePoint(b.IdentityKey, 0)
	if err != nil {
		return err
	}
	sp := b.GetSignedPreKey()
	spk, err := ecc.DecodePoint(sp.GetPublicKey(), 0)
	if err != nil {
		return err
	}
	if len(sp.Signature) != 64 {
		return errors.New("bad signature length")
	}
	var otk ecc.ECPublicKeyable
	otkID := optional.NewEmptyUint32()
	if b.PreKey != nil {
		if otk, err = ecc.DecodePoint(b.PreKey.PublicKey, 0); err != nil {
			return err
		}
		otkID = optional.NewOptionalUint32(b.PreKey.Id)
	}
	bundle := prekey.NewBundle(b.RegistrationId, uint32(b.DeviceId), otkID, sp.Id, otk, spk, [64]byte(sp.Signature), identity.NewKey(ik))
	addr := protocol.NewSignalAddress(strconv.FormatInt(b.UserId, 10), uint32(b.DeviceId))
	// A key other than the pinned one is never trusted silently: a server
	// that hands out its own keys must not get a session.
	if ok, err := s.sig.IsTrustedIdentity(ctx, addr, identity.NewKey(ik)); err != nil || !ok {
		if err == nil {
			err = s.markChanged(addr, identity.NewKey(ik))
		}
		if err == nil {
			err = keyChangedError("", b.DeviceId)
		}
		return err
	}
	// The pinned key again: a change seen before is moot.
	if err := s.kv.Delete("pending/" + addrKey(addr)); err != nil {
		return err
	}
	return s.builder(addr).ProcessBundle(ctx, bundle)
}

func (s *Secret) builder(addr *protocol.SignalAddress) *sigsession.Builder {
	return sigsession.NewBuilder(s.sig, s.sig, s.sig, s.sig, addr, s.sig.ser)
}

// SecretSendOptions are the extras of a secret message.
type SecretSendOptions struct {
	// TTL is the self-destruct timer: the message disappears from every
	// device this long after the recipient read it. It travels inside the
	// ciphertext; the server only learns that envelopes of a message with
	// a timer are dropped if undelivered for herald.MaxTTL.
	TTL time.Duration
	// File, if set, is encrypted here and uploaded as an opaque blob.
	File     io.ReadSeeker
	FileSize int64
	FileName string
	// Progress, if set, follows the encrypted file's upload.
	Progress Progress
}

// payload is a secret message's plaintext, padded before encryption.
type payload struct {
	V      int         `json:"v"`
	Kind   string      `json:"k"` // "m": a message; "r": read receipt
	ID     string      `json:"id"`
	Peer   int64       `json:"p"`            // the recipient user, as the sender sees the chat
	Name   string      `json:"pn,omitempty"` // their username, for the sender's other devices
	Text   string      `json:"t,omitempty"`
	TTL    int64       `json:"ttl,omitempty"` // ms
	Sent   int64       `json:"s"`
	File   *SecretFile `json:"f,omitempty"`
	Read   []string    `json:"r,omitempty"`
	ReadAt int64       `json:"ra,omitempty"`
	// Group is a secret group's membership or sender key (kinds "gs"
	// and "gk"), sent pairwise.
	Group *groupPayload `json:"g,omitempty"`
}

// padBlock is the granularity of padding: an envelope's size tells the
// server a message's length only to within this many bytes.
const padBlock = 256

// pad appends 0x80 and zeros up to a multiple of padBlock (ISO/IEC
// 7816-4, as Signal's clients pad).
func pad(b []byte) []byte {
	n := (len(b)/padBlock + 1) * padBlock
	out := make([]byte, n)
	copy(out, b)
	out[len(b)] = 0x80
	return out
}

func unpad(b []byte) ([]byte, error) {
	i := len(b) - 1
	for i >= 0 && b[i] == 0 {
		i--
	}
	if i < 0 || b[i] != 0x80 {
		return nil, errors.New("bad padding")
	}
	return b[:i], nil
}

func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Send encrypts a message for every device of username and every other
// device of this user, and queues it. If the server says the device list
// changed, sessions are updated (new devices get new messages only; they
// never see history) and the message is sent again; the returned message
// then carries a warning that the safety number changed.
func (s *Secret) Send(ctx context.Context, username, text string, opts SecretSendOptions) (*SecretMessage, error) {
	if opts.TTL != 0 && (opts.TTL < herald.MinTTL || opts.TTL > herald.MaxTTL) {
		return nil, herald.Errorf(herald.Invalid, "a self-destruct timer is between %s and %s", herald.MinTTL, herald.MaxTTL)
	}
	if opts.File == nil {
		if err := herald.ValidateText(text); err != nil {
			return nil, err
		}
	} else if err := herald.ValidateCaption(text); err != nil {
		return nil, err
	}
	if id, ok := ParseGroupChatID(username); ok {
		return s.groupSend(ctx, id, text, opts)
	}
	u, _, warn0, err := s.start(ctx, username, false)
	if err != nil {
		return nil, err
	}
	me, _ := s.c.Self()
	p := payload{V: 1, Kind: "m", ID: randomID(), Peer: u.Id, Name: u.Username, Text: text, TTL: opts.TTL.Milliseconds(), Sent: s.opts.Now().UnixMilli()}
	var fileIDs []string
	if opts.File != nil {
		f, err := s.uploadEncrypted(ctx, opts)
		if err != nil {
			return nil, err
		}
		p.File, fileIDs = f, []string{f.ID}
	}
	// Undelivered envelopes of a message with a timer live no longer than
	// an unread timed message does anywhere in Herald.
	var life time.Duration
	if opts.TTL > 0 {
		life = herald.MaxTTL
	}
	warn, err := s.fanOut(ctx, u, p, life, fileIDs)
	if err != nil {
		return nil, err
	}
	if warn == "" {
		warn = warn0
	}
	m := &SecretMessage{
		ID: p.ID, ChatID: ChatID(me, u.Id), PeerID: u.Id, Peer: u.Username, Outgoing: true, FromID: me,
		Text: text, File: p.File, SentAt: time.UnixMilli(p.Sent).UTC(), TTL: opts.TTL, Warning: warn,
	}
	m.From, _ = s.selfName(ctx)
	_, m.FromDevice = s.c.Self()
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return m, s.putMessage(m)
}

// fanOut encrypts p for the peer's devices and this user's other
// devices and sends it, following the server's word on the device list.
func (s *Secret) fanOut(ctx context.Context, u *pb.User, p payload, life time.Duration, fileIDs []string) (string, error) {
	plain, _ := json.Marshal(p)
	plain = pad(plain)
	me, _ := s.c.Self()
	self, err := s.selfName(ctx)
	if err != nil {
		return "", err
	}
	changed := false
	for attempt := 0; ; attempt++ {
		unlock, err := s.lock(ctx)
		if err != nil {
			return "", err
		}
		peer, err := s.loadPeer(u.Id)
		if err != nil {
			unlock()
			return "", err
		}
		if err := s.checkUnchanged(peer); err != nil {
			unlock()
			return "", err
		}
		req := &pb.SecretSendRequest{Username: u.Username, TtlMs: life.Milliseconds(), FileIds: fileIDs}
		for _, t := range []struct {
			user    int64
			devices []int64
		}{{u.Id, peer.Devices}, {me, peer.Own}} {
			for _, d := range t.devices {
				e, err := s.encrypt(ctx, t.user, d, plain)
				if err != nil {
					unlock()
					return "", err
				}
				req.Envelopes = append(req.Envelopes, e)
			}
		}
		unlock()
		err = s.c.Call(ctx, "secret.send", req, &pb.SecretSendResult{})
		var stale *herald.StaleDevicesError
		if !errors.As(err, &stale) || attempt >= 3 {
			if err != nil {
				return "", err
			}
			break
		}
		changed = true
		if err := s.refreshDevices(ctx, u, self, stale); err != nil {
			return "", err
		}
	}
	if !changed {
		return "", nil
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	peer, err := s.loadPeer(u.Id)
	if err != nil {
		return "", err
	}
	return s.updateSafety(ctx, peer)
}

// refreshDevices follows a STALE_DEVICES answer: sessions with devices
// that are gone are deleted, sessions with new devices are started.
func (s *Secret) refreshDevices(ctx context.Context, u *pb.User, self string, st *herald.StaleDevicesError) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	peer, err := s.loadPeer(u.Id)
	if err != nil {
		return err
	}
	return s.applyDevices(ctx, u, self, peer, st)
}

// applyDevices updates the chat's device lists and sessions to st and
// saves peer. A device both gone and new (its id given to a device with
// a new registration) keeps its session and its pinned key until its new
// bundle is seen: a different key there is a key change, reported as a
// KeyChanged error once the lists are saved. The store is locked.
func (s *Secret) applyDevices(ctx context.Context, u *pb.User, self string, peer *peerInfo, st *herald.StaleDevicesError) error {
	me, _ := s.c.Self()
	var changed error
	for _, set := range st.Current {
		name, list := u.Username, &peer.Devices
		if set.UserID == me {
			name, list = self, &peer.Own
		} else if set.UserID != u.Id {
			continue
		}
		var fresh []int64
		for _, d := range set.Devices {
			if slices.Contains(st.Missing, d) {
				fresh = append(fresh, d)
			}
		}
		for _, d := range *list {
			if slices.Contains(st.Extra, d) && !slices.Contains(fresh, d) {
				s.sig.DeleteSession(ctx, protocol.NewSignalAddress(strconv.FormatInt(set.UserID, 10), uint32(d)))
			}
		}
		if len(fresh) > 0 {
			if _, err := s.buildSessions(ctx, name, fresh); err != nil {
				if !herald.IsKind(err, herald.KeyChanged) {
					return err
				}
				changed = cmp.Or(changed, err)
			}
		}
		*list = slices.Clone(set.Devices)
	}
	if err := s.savePeer(peer); err != nil {
		return err
	}
	return changed
}

func (s *Secret) encrypt(ctx context.Context, user, device int64, plain []byte) (*pb.OutgoingEnvelope, error) {
	addr := protocol.NewSignalAddress(strconv.FormatInt(user, 10), uint32(device))
	ct, err := sigsession.NewCipher(s.builder(addr), addr).Encrypt(ctx, plain)
	if err != nil {
		return nil, herald.Errorf(herald.Internal, "cannot encrypt for device %d: %v", device, err)
	}
	// The registration id the session was built with tells the server
	// which incarnation of the device this is for: a device id can be
	// given again to a later device.
	rec, err := s.sig.LoadSession(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &pb.OutgoingEnvelope{DeviceId: device, Type: int32(ct.Type()), Body: ct.Serialize(), RegistrationId: rec.SessionState().RemoteRegistrationID()}, nil
}

// uploadEncrypted encrypts a file with age to a fresh X25519 identity
// (the per-file key) and uploads the ciphertext; the server stores a blob
// it cannot read.
func (s *Secret) uploadEncrypted(ctx context.Context, opts SecretSendOptions) (*SecretFile, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	tmp, err := newSpool()
	if err != nil {
		return nil, err
	}
	defer tmp.Close()
	if _, err := opts.File.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	h := sha256.New()
	w, err := age.Encrypt(tmp, id.Recipient())
	if err != nil {
		return nil, err
	}
	n, err := io.Copy(io.MultiWriter(w, h), opts.File)
	if err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	size, err := tmp.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	// The server sees a name that says nothing about the file.
	f, err := s.c.UploadFile(ctx, tmp, size, UploadOptions{Name: "secret.age", Progress: opts.Progress})
	if err != nil {
		return nil, err
	}
	name := opts.FileName
	if name == "" {
		name = "file"
	}
	return &SecretFile{ID: f.Id, Name: herald.CleanFileName(name), Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Key: id.String()}, nil
}

// Download fetches a secret message's attachment, decrypts it and checks
// its SHA-256 against the one the sender put in the message.
func (s *Secret) Download(ctx context.Context, f *SecretFile, w io.Writer) error {
	id, err := age.ParseX25519Identity(f.Key)
	if err != nil {
		return herald.Errorf(herald.Invalid, "the file's key is damaged")
	}
	tmp, err := newSpool()
	if err != nil {
		return err
	}
	defer tmp.Close()
	if _, _, err := s.c.DownloadRange(ctx, f.ID, 0, tmp, nil); err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	r, err := age.Decrypt(tmp, id)
	if err != nil {
		return herald.Errorf(herald.Invalid, "the file does not decrypt with its key: %v", err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(w, h), r); err != nil {
		return herald.Errorf(herald.Invalid, "the file does not decrypt: %v", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return herald.Errorf(herald.Invalid, "the file's SHA-256 is %s, not the %s its message promised", got, f.SHA256)
	}
	return nil
}

// DownloadMessage writes the file of message id (SecretMessage.ID) in the
// secret chat with username to w: fetched, decrypted on this device and
// checked against the SHA-256 in the message. It returns the message.
// Nothing is written if the message is not kept here (NotFound) or has
// no file (Invalid); on a hash mismatch w has the wrong bytes and the
// error says so, so write to a temporary place.
func (s *Secret) DownloadMessage(ctx context.Context, username, id string, w io.Writer) (*SecretMessage, error) {
	if gid, ok := ParseGroupChatID(username); ok {
		m, err := s.Message(-gid, id)
		if err != nil {
			return nil, herald.Errorf(herald.NotFound, "no secret message %q in %s on this device (its timer may have run out)", id, username)
		}
		if m.File == nil {
			return nil, herald.Errorf(herald.Invalid, "secret message %q has no file", id)
		}
		return m, s.Download(ctx, m.File, w)
	}
	u, err := s.resolve(ctx, username)
	if err != nil {
		return nil, err
	}
	m, err := s.Message(u.Id, id)
	if err != nil {
		return nil, herald.Errorf(herald.NotFound, "no secret message %q in the chat with @%s on this device (its timer may have run out)", id, u.Username)
	}
	if m.File == nil {
		return nil, herald.Errorf(herald.Invalid, "secret message %q has no file", id)
	}
	return m, s.Download(ctx, m.File, w)
}

// spool holds an encrypted attachment while it is uploaded or before it
// is decrypted: a temporary file, or memory in the browser.
type spool interface {
	io.ReadWriteSeeker
	io.Closer
}
