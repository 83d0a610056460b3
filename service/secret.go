package service

import (
	"context"
	"slices"
	"time"

	"github.com/heraldim/herald"
	"go.mau.fi/libsignal/ecc"
)

// Secret chats (docs/SECRET.md). The server's part is small on purpose:
// it keeps devices' public keys, hands out one-time prekeys once each, and
// queues opaque envelopes per device until they are acknowledged. It
// never sees a plaintext, a file key or a private key, so nothing here can
// check what a message says; it checks who may send to whom, that a
// message reaches every device it must, and sizes.

// secretReady reports Unavailable when the server was built without a
// secret store.
func (s *Service) secretReady() error {
	if s.secret == nil {
		return herald.Errorf(herald.Unavailable, "secret chats are not available on this server")
	}
	return nil
}

// KeyUpload is what a device publishes: its identity key (once), its
// signed prekey (replaced only by a newer one) and one-time prekeys.
type KeyUpload struct {
	IdentityKey    []byte
	RegistrationID uint32
	Signed         herald.SignedPreKey
	PreKeys        []herald.PreKey
}

// Curve25519 public keys as libsignal serializes them: a type byte and 32
// bytes; its signatures are 64 bytes.
const (
	publicKeyLen = 33
	signatureLen = 64
)

func checkPublicKey(what string, b []byte) (ecc.ECPublicKeyable, error) {
	if len(b) != publicKeyLen {
		return nil, herald.Errorf(herald.Invalid, "the %s is not a %d-byte Curve25519 public key", what, publicKeyLen)
	}
	k, err := ecc.DecodePoint(b, 0)
	if err != nil {
		return nil, herald.Errorf(herald.Invalid, "the %s is not a Curve25519 public key", what)
	}
	return k, nil
}

// PublishKeys stores the caller's device's public keys and returns how
// its supply of one-time prekeys stands. The signed prekey's signature is
// checked against the identity key, so a device cannot publish a bundle
// that every sender would reject.
func (s *Service) PublishKeys(ctx context.Context, c Caller, up KeyUpload) (herald.KeyStatus, error) {
	if err := s.secretReady(); err != nil {
		return herald.KeyStatus{}, err
	}
	if err := CheckKeyUpload(up, s.now()); err != nil {
		return herald.KeyStatus{}, err
	}
	return s.secret.PublishKeys(ctx, herald.DeviceKeys{
		UserID: c.UserID, DeviceID: c.DeviceID, RegistrationID: up.RegistrationID, IdentityKey: up.IdentityKey, Signed: up.Signed,
	}, up.PreKeys)
}

// CheckKeyUpload checks what a device publishes, as it came off the
// wire, before anything is stored: Curve25519 keys of the right length
// that decode, a registration id, a signed prekey whose signature
// verifies with the identity key and whose time is not in the future
// (now is the server's clock), and at most herald.MaxPreKeysPerUpload
// one-time prekeys. Its errors are INVALID_ARGUMENT or TOO_LARGE.
func CheckKeyUpload(up KeyUpload, now time.Time) error {
	if len(up.PreKeys) > herald.MaxPreKeysPerUpload {
		return herald.Errorf(herald.TooLarge, "upload at most %d one-time prekeys at a time", herald.MaxPreKeysPerUpload)
	}
	ident, err := checkPublicKey("identity key", up.IdentityKey)
	if err != nil {
		return err
	}
	if up.RegistrationID == 0 {
		return herald.Errorf(herald.Invalid, "the registration id is missing")
	}
	if _, err := checkPublicKey("signed prekey", up.Signed.PublicKey); err != nil {
		return err
	}
	if len(up.Signed.Signature) != signatureLen || !ecc.VerifySignature(ident, up.Signed.PublicKey, [64]byte(up.Signed.Signature)) {
		return herald.Errorf(herald.Invalid, "the signed prekey's signature does not verify with the identity key")
	}
	if up.Signed.CreatedAt.IsZero() || up.Signed.CreatedAt.After(now.Add(24*time.Hour)) {
		return herald.Errorf(herald.Invalid, "the signed prekey needs the time it was made, and not one in the future")
	}
	for _, p := range up.PreKeys {
		if _, err := checkPublicKey("one-time prekey", p.PublicKey); err != nil {
			return err
		}
	}
	return nil
}

// KeyStatus tells the caller's device how its published keys stand.
func (s *Service) KeyStatus(ctx context.Context, c Caller) (herald.KeyStatus, error) {
	if err := s.secretReady(); err != nil {
		return herald.KeyStatus{}, err
	}
	return s.secret.KeyStatus(ctx, c.DeviceID)
}

// secretPeer resolves the other person of a secret chat and refuses
// those who blocked the caller.
func (s *Service) secretPeer(ctx context.Context, c Caller, username string, self bool) (herald.User, error) {
	if err := s.secretReady(); err != nil {
		return herald.User{}, err
	}
	u, err := s.ResolveUser(ctx, username)
	if err != nil {
		return u, err
	}
	if u.ID == c.UserID && !self {
		return u, herald.Errorf(herald.Invalid, "a secret chat is between two people; your other devices get copies of what you send")
	}
	if u.Suspended(s.now()) {
		return u, herald.Errorf(herald.NotFound, "no user @%s", u.Username)
	}
	return u, s.blockedBy(ctx, u.ID, c.UserID, "secret chats")
}

// Identities returns the identity keys of a user's devices (the caller's
// own included), for safety numbers and to notice a changed device list.
// It hands out no prekeys.
func (s *Service) Identities(ctx context.Context, c Caller, username string) (herald.User, []herald.DeviceKeys, error) {
	u, err := s.secretPeer(ctx, c, username, true)
	if err != nil {
		return u, nil, err
	}
	ks, err := s.secret.DeviceKeys(ctx, u.ID)
	return u, ks, err
}

// Bundles claims a prekey bundle for each of a user's devices (or those
// listed) so the caller can start Signal sessions with them. Each
// one-time prekey goes to one caller only; when they run out, or the
// caller or the target has made too many claims lately, bundles carry
// the signed prekey alone.
func (s *Service) Bundles(ctx context.Context, c Caller, username string, deviceIDs []int64) (herald.User, []herald.Bundle, error) {
	u, err := s.secretPeer(ctx, c, username, true)
	if err != nil {
		return u, nil, err
	}
	if len(deviceIDs) > herald.MaxEnvelopesPerSend {
		return u, nil, herald.Errorf(herald.TooLarge, "ask for at most %d devices at a time", herald.MaxEnvelopesPerSend)
	}
	// A claim costs the server as much as a message.
	if err := s.rl.direct.take(ctx, key(c.UserID)); err != nil {
		return u, nil, err
	}
	// And it spends prekeys of someone else's: past the requester's or
	// the target's budget, bundles carry the signed prekey alone
	// (prekeylimits.go).
	oneTime, err := s.preKeys.oneTime(ctx, c.UserID, u.ID)
	if err != nil {
		return u, nil, err
	}
	var bs []herald.Bundle
	if oneTime {
		bs, err = s.secret.ClaimBundles(ctx, u.ID, deviceIDs)
	} else {
		bs, err = s.signedOnly(ctx, u.ID, deviceIDs)
	}
	if err != nil {
		return u, nil, err
	}
	// The caller does not need a session with itself.
	bs = slices.DeleteFunc(bs, func(b herald.Bundle) bool { return b.DeviceID == c.DeviceID })
	return u, bs, nil
}

// signedOnly returns the bundles of userID's devices (those in deviceIDs,
// if any) without claiming a one-time prekey.
func (s *Service) signedOnly(ctx context.Context, userID int64, deviceIDs []int64) ([]herald.Bundle, error) {
	ks, err := s.secret.DeviceKeys(ctx, userID)
	if err != nil {
		return nil, err
	}
	var out []herald.Bundle
	for _, k := range ks {
		if len(deviceIDs) == 0 || slices.Contains(deviceIDs, k.DeviceID) {
			out = append(out, herald.Bundle{DeviceKeys: k})
		}
	}
	return out, nil
}

// SecretSend is one secret message from the caller's device.
type SecretSend struct {
	Username  string
	Envelopes []herald.Envelope // DeviceID, Type and Body set
	// TTL drops envelopes not delivered within it (0: the server's
	// retention). The message's own self-destruct timer is inside the
	// ciphertext, out of the server's sight.
	TTL     time.Duration
	FileIDs []string // encrypted attachments the recipient may download
}

// SendSecret queues one envelope per device: one for every device of the
// recipient and one for every other device of the caller, all with keys
// published. If the envelopes name a different set of devices, nothing
// is stored and the error (a *herald.StaleDevicesError) lists the current
// ones, so the client can update its sessions and send again.
func (s *Service) SendSecret(ctx context.Context, c Caller, p SecretSend) ([]herald.Envelope, error) {
	u, err := s.secretPeer(ctx, c, p.Username, false)
	if err != nil {
		return nil, err
	}
	named, err := CheckSecretSend(p)
	if err != nil {
		return nil, err
	}
	if err := s.rl.direct.take(ctx, key(c.UserID)); err != nil {
		return nil, err
	}
	theirs, err := s.secret.DeviceKeys(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	mine, err := s.secret.DeviceKeys(ctx, c.UserID)
	if err != nil {
		return nil, err
	}
	if len(theirs) == 0 {
		return nil, herald.Errorf(herald.NotFound, "@%s has no device that can receive secret messages yet", u.Username)
	}
	owner := map[int64]int64{}
	reg := map[int64]uint32{}
	cur := []herald.DeviceSet{{UserID: u.ID}, {UserID: c.UserID}}
	for _, k := range theirs {
		owner[k.DeviceID], reg[k.DeviceID] = u.ID, k.RegistrationID
		cur[0].Devices = append(cur[0].Devices, k.DeviceID)
	}
	for _, k := range mine {
		if k.DeviceID != c.DeviceID {
			owner[k.DeviceID], reg[k.DeviceID] = c.UserID, k.RegistrationID
			cur[1].Devices = append(cur[1].Devices, k.DeviceID)
		}
	}
	var missing, extra []int64
	for d := range owner {
		if !slices.Contains(named, d) {
			missing = append(missing, d)
		}
	}
	for i, d := range named {
		if _, ok := owner[d]; !ok {
			extra = append(extra, d)
		} else if r := p.Envelopes[i].RegistrationID; r != 0 && r != reg[d] {
			// Encrypted for an earlier device that had this id: it is
			// gone (extra) and a new one is there (missing).
			extra, missing = append(extra, d), append(missing, d)
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		return nil, herald.NewStaleDevices(missing, extra, cur)
	}
	for _, id := range p.FileIDs {
		if !validFileID(id) {
			return nil, herald.Errorf(herald.NotFound, "no such file")
		}
		f, err := s.store.File(ctx, id)
		if err != nil || f.OwnerID != c.UserID {
			if err == nil || herald.IsKind(err, herald.NotFound) {
				return nil, herald.Errorf(herald.NotFound, "no such file among your uploads")
			}
			return nil, err
		}
	}
	now := s.now()
	life := s.retention
	if p.TTL > 0 && p.TTL < life {
		life = p.TTL
	}
	envs := make([]herald.Envelope, len(p.Envelopes))
	for i, e := range p.Envelopes {
		envs[i] = herald.Envelope{
			SenderID: c.UserID, SenderDevice: c.DeviceID, UserID: owner[e.DeviceID], DeviceID: e.DeviceID,
			Type: e.Type, Body: e.Body, SentAt: now, ExpiresAt: now.Add(life),
		}
	}
	// Grants first: an envelope delivered before its file could be read
	// would show a download that fails.
	for _, id := range p.FileIDs {
		if err := s.secret.GrantFile(ctx, id, []int64{u.ID}); err != nil {
			return nil, err
		}
	}
	stored, err := s.secret.Enqueue(ctx, envs)
	if err != nil {
		return nil, err
	}
	bg := context.WithoutCancel(ctx)
	for i := range stored {
		e := stored[i]
		s.emitEnvelope(bg, &e)
	}
	s.notifySecret(stored)
	return stored, nil
}

// CheckSecretSend checks a secret message as it came off the wire,
// before anything is looked up: one to herald.MaxEnvelopesPerSend
// envelopes, each a Signal message or prekey message of at most
// herald.MaxEnvelopeBytes for a different device, a TTL that is not
// negative and at most 10 files. It returns the devices named, in order.
// Its errors are INVALID_ARGUMENT or TOO_LARGE.
func CheckSecretSend(p SecretSend) ([]int64, error) {
	if len(p.Envelopes) == 0 {
		return nil, herald.Errorf(herald.Invalid, "a secret message needs at least one envelope")
	}
	if len(p.Envelopes) > herald.MaxEnvelopesPerSend {
		return nil, herald.Errorf(herald.TooLarge, "a secret message goes to at most %d devices", herald.MaxEnvelopesPerSend)
	}
	if p.TTL < 0 {
		return nil, herald.Errorf(herald.Invalid, "the time to live is never negative")
	}
	if len(p.FileIDs) > 10 {
		return nil, herald.Errorf(herald.TooLarge, "a secret message carries at most 10 files")
	}
	named := make([]int64, 0, len(p.Envelopes))
	for _, e := range p.Envelopes {
		if e.Type != herald.EnvelopeWhisper && e.Type != herald.EnvelopePreKey {
			return nil, herald.Errorf(herald.Invalid, "envelope type %d is not a Signal message (2) or prekey message (3)", e.Type)
		}
		if len(e.Body) == 0 {
			return nil, herald.Errorf(herald.Invalid, "an envelope is empty")
		}
		if len(e.Body) > herald.MaxEnvelopeBytes {
			return nil, herald.Errorf(herald.TooLarge, "an envelope holds at most %d bytes, this one has %d", herald.MaxEnvelopeBytes, len(e.Body))
		}
		if slices.Contains(named, e.DeviceID) {
			return nil, herald.Errorf(herald.Invalid, "device %d has two envelopes", e.DeviceID)
		}
		named = append(named, e.DeviceID)
	}
	return named, nil
}

// FetchEnvelopes returns the oldest envelopes queued for the caller's
// device (they stay until acknowledged) and how its keys stand, which is
// how a device learns to upload more one-time prekeys.
func (s *Service) FetchEnvelopes(ctx context.Context, c Caller, limit int) ([]herald.Envelope, bool, herald.KeyStatus, error) {
	if err := s.secretReady(); err != nil {
		return nil, false, herald.KeyStatus{}, err
	}
	if limit <= 0 || limit > herald.MaxEnvelopePage {
		limit = herald.MaxEnvelopePage
	}
	envs, err := s.secret.Envelopes(ctx, c.DeviceID, s.now(), limit+1)
	if err != nil {
		return nil, false, herald.KeyStatus{}, err
	}
	more := len(envs) > limit
	if more {
		envs = envs[:limit]
	}
	st, err := s.secret.KeyStatus(ctx, c.DeviceID)
	return envs, more, st, err
}

// AckEnvelopes deletes envelopes the caller's device has stored on its
// own. Ids of other devices' envelopes are ignored.
func (s *Service) AckEnvelopes(ctx context.Context, c Caller, ids []int64) error {
	if err := s.secretReady(); err != nil {
		return err
	}
	if len(ids) > 2*herald.MaxEnvelopePage {
		return herald.Errorf(herald.TooLarge, "acknowledge at most %d envelopes at a time", 2*herald.MaxEnvelopePage)
	}
	_, err := s.secret.Ack(ctx, c.DeviceID, ids)
	return err
}

// sweepEnvelopes deletes envelopes past their time and those of devices
// that are gone.
func (s *Service) sweepEnvelopes(ctx context.Context, now time.Time) (int, error) {
	if s.secret == nil {
		return 0, nil
	}
	total := 0
	for {
		n, err := s.secret.ExpireEnvelopes(ctx, now, sweepBatch)
		total += n
		if err != nil || n < sweepBatch {
			return total, err
		}
	}
}
