package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"go.mau.fi/libsignal/ecc"
	grouprecord "go.mau.fi/libsignal/groups/state/record"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/state/record"
)

// signalStore implements libsignal's store interfaces (identity, prekeys,
// signed prekeys, sessions) on a SecretStore. Records are kept in
// libsignal's own protobuf serialization.
type signalStore struct {
	kv  SecretStore
	ser *serialize.Serializer
	id  *identity.KeyPair
	reg uint32
}

// localIdentity is the device's identity as kept in the store.
type localIdentity struct {
	Public   []byte `json:"public"`
	Private  []byte `json:"private"`
	Reg      uint32 `json:"registration_id"`
	DeviceID int64  `json:"device_id"` // the device these keys belong to
	UserID   int64  `json:"user_id"`
}

func addrKey(a *protocol.SignalAddress) string {
	return fmt.Sprintf("%s.%d", a.Name(), a.DeviceID())
}

func (s *signalStore) loadIdentity() (*localIdentity, error) {
	b, ok, err := s.kv.Get("identity")
	if err != nil || !ok {
		return nil, err
	}
	var li localIdentity
	if err := json.Unmarshal(b, &li); err != nil {
		return nil, fmt.Errorf("the secret chat identity is damaged: %w", err)
	}
	pub, err := ecc.DecodePoint(li.Public, 0)
	if err != nil || len(li.Private) != 32 {
		return nil, fmt.Errorf("the secret chat identity is damaged")
	}
	s.id = identity.NewKeyPair(identity.NewKey(pub), ecc.NewDjbECPrivateKey([32]byte(li.Private)))
	s.reg = li.Reg
	return &li, nil
}

func (s *signalStore) saveIdentity(kp *identity.KeyPair, reg uint32, userID, deviceID int64) error {
	priv := kp.PrivateKey().Serialize()
	b, _ := json.Marshal(localIdentity{Public: kp.PublicKey().Serialize(), Private: priv[:], Reg: reg, UserID: userID, DeviceID: deviceID})
	if err := s.kv.Put("identity", b); err != nil {
		return err
	}
	s.id, s.reg = kp, reg
	return nil
}

// GetIdentityKeyPair implements store.IdentityKey.
func (s *signalStore) GetIdentityKeyPair() *identity.KeyPair { return s.id }

// GetLocalRegistrationID implements store.IdentityKey.
func (s *signalStore) GetLocalRegistrationID() uint32 { return s.reg }

// SaveIdentity implements store.IdentityKey.
func (s *signalStore) SaveIdentity(_ context.Context, a *protocol.SignalAddress, k *identity.Key) error {
	return s.kv.Put("trust/"+addrKey(a), k.Serialize())
}

// IsTrustedIdentity implements store.IdentityKey: trust on first use,
// per device. A Herald device never changes its identity key (the server
// refuses it), so a different key for a device seen before is refused.
func (s *signalStore) IsTrustedIdentity(_ context.Context, a *protocol.SignalAddress, k *identity.Key) (bool, error) {
	b, ok, err := s.kv.Get("trust/" + addrKey(a))
	if err != nil {
		return false, err
	}
	return !ok || bytes.Equal(b, k.Serialize()), nil
}

// storedKey is how prekeys are kept. libsignal's own record encoding is
// not used for them: in v0.2.1 reading a record back takes the first 32
// bytes of the 33-byte serialized public key (type byte included), so a
// reloaded key pair has a wrong public half.
type storedKey struct {
	ID        uint32 `json:"id"`
	Timestamp int64  `json:"ts,omitempty"`
	Public    []byte `json:"public"`
	Private   []byte `json:"private"`
	Signature []byte `json:"sig,omitempty"`
}

func encodeKey(id uint32, ts int64, kp *ecc.ECKeyPair, sig []byte) []byte {
	priv := kp.PrivateKey().Serialize()
	b, _ := json.Marshal(storedKey{ID: id, Timestamp: ts, Public: kp.PublicKey().Serialize(), Private: priv[:], Signature: sig})
	return b
}

func decodeKey(b []byte) (*storedKey, *ecc.ECKeyPair, error) {
	var k storedKey
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, nil, err
	}
	pub, err := ecc.DecodePoint(k.Public, 0)
	if err != nil || len(k.Private) != 32 {
		return nil, nil, fmt.Errorf("a stored prekey is damaged")
	}
	return &k, ecc.NewECKeyPair(pub, ecc.NewDjbECPrivateKey([32]byte(k.Private))), nil
}

// LoadPreKey implements store.PreKey.
func (s *signalStore) LoadPreKey(_ context.Context, id uint32) (*record.PreKey, error) {
	b, ok, err := s.kv.Get("prekey/" + strconv.FormatUint(uint64(id), 10))
	if err != nil || !ok {
		return nil, err
	}
	k, kp, err := decodeKey(b)
	if err != nil {
		return nil, err
	}
	return record.NewPreKey(k.ID, kp, s.ser.PreKeyRecord), nil
}

// StorePreKey implements store.PreKey.
func (s *signalStore) StorePreKey(_ context.Context, id uint32, r *record.PreKey) error {
	return s.kv.Put("prekey/"+strconv.FormatUint(uint64(id), 10), encodeKey(id, 0, r.KeyPair(), nil))
}

// ContainsPreKey implements store.PreKey.
func (s *signalStore) ContainsPreKey(_ context.Context, id uint32) (bool, error) {
	_, ok, err := s.kv.Get("prekey/" + strconv.FormatUint(uint64(id), 10))
	return ok, err
}

// RemovePreKey implements store.PreKey: a one-time prekey is deleted
// once a session was built with it.
func (s *signalStore) RemovePreKey(_ context.Context, id uint32) error {
	return s.kv.Delete("prekey/" + strconv.FormatUint(uint64(id), 10))
}

// LoadSignedPreKey implements store.SignedPreKey.
func (s *signalStore) LoadSignedPreKey(_ context.Context, id uint32) (*record.SignedPreKey, error) {
	b, ok, err := s.kv.Get("signed/" + strconv.FormatUint(uint64(id), 10))
	if err != nil || !ok {
		return nil, err
	}
	k, kp, err := decodeKey(b)
	if err != nil {
		return nil, err
	}
	if len(k.Signature) != 64 {
		return nil, fmt.Errorf("a stored signed prekey is damaged")
	}
	return record.NewSignedPreKey(k.ID, k.Timestamp, kp, [64]byte(k.Signature), s.ser.SignedPreKeyRecord), nil
}

// LoadSignedPreKeys implements store.SignedPreKey.
func (s *signalStore) LoadSignedPreKeys(ctx context.Context) ([]*record.SignedPreKey, error) {
	keys, err := s.kv.Keys("signed/")
	if err != nil {
		return nil, err
	}
	var out []*record.SignedPreKey
	for _, k := range keys {
		id, err := strconv.ParseUint(strings.TrimPrefix(k, "signed/"), 10, 32)
		if err != nil {
			continue
		}
		r, err := s.LoadSignedPreKey(ctx, uint32(id))
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// StoreSignedPreKey implements store.SignedPreKey.
func (s *signalStore) StoreSignedPreKey(_ context.Context, id uint32, r *record.SignedPreKey) error {
	sig := r.Signature()
	return s.kv.Put("signed/"+strconv.FormatUint(uint64(id), 10), encodeKey(id, r.Timestamp(), r.KeyPair(), sig[:]))
}

// ContainsSignedPreKey implements store.SignedPreKey.
func (s *signalStore) ContainsSignedPreKey(_ context.Context, id uint32) (bool, error) {
	_, ok, err := s.kv.Get("signed/" + strconv.FormatUint(uint64(id), 10))
	return ok, err
}

// RemoveSignedPreKey implements store.SignedPreKey.
func (s *signalStore) RemoveSignedPreKey(_ context.Context, id uint32) error {
	return s.kv.Delete("signed/" + strconv.FormatUint(uint64(id), 10))
}

// LoadSession implements store.Session; a device with no session gets a
// fresh record, as libsignal expects.
func (s *signalStore) LoadSession(_ context.Context, a *protocol.SignalAddress) (*record.Session, error) {
	b, ok, err := s.kv.Get("session/" + addrKey(a))
	if err != nil {
		return nil, err
	}
	if !ok {
		return record.NewSession(s.ser.Session, s.ser.State), nil
	}
	return record.NewSessionFromBytes(b, s.ser.Session, s.ser.State)
}

// GetSubDeviceSessions implements store.Session.
func (s *signalStore) GetSubDeviceSessions(_ context.Context, name string) ([]uint32, error) {
	keys, err := s.kv.Keys("session/" + name + ".")
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, k := range keys {
		d, err := strconv.ParseUint(strings.TrimPrefix(k, "session/"+name+"."), 10, 32)
		if err == nil {
			out = append(out, uint32(d))
		}
	}
	return out, nil
}

// StoreSession implements store.Session.
func (s *signalStore) StoreSession(_ context.Context, a *protocol.SignalAddress, r *record.Session) error {
	return s.kv.Put("session/"+addrKey(a), r.Serialize())
}

// ContainsSession implements store.Session.
func (s *signalStore) ContainsSession(_ context.Context, a *protocol.SignalAddress) (bool, error) {
	_, ok, err := s.kv.Get("session/" + addrKey(a))
	return ok, err
}

// DeleteSession implements store.Session.
func (s *signalStore) DeleteSession(_ context.Context, a *protocol.SignalAddress) error {
	return s.kv.Delete("session/" + addrKey(a))
}

// DeleteAllSessions implements store.Session.
func (s *signalStore) DeleteAllSessions(context.Context) error {
	keys, err := s.kv.Keys("session/")
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

func senderKeyKey(n *protocol.SenderKeyName) string {
	return "senderkey/" + n.GroupID() + "/" + addrKey(n.Sender())
}

// LoadSenderKey implements libsignal's groups store.SenderKey: an empty
// record when there is none, as its group cipher expects.
func (s *signalStore) LoadSenderKey(_ context.Context, n *protocol.SenderKeyName) (*grouprecord.SenderKey, error) {
	b, ok, err := s.kv.Get(senderKeyKey(n))
	if err != nil {
		return nil, err
	}
	if !ok {
		return grouprecord.NewSenderKey(s.ser.SenderKeyRecord, s.ser.SenderKeyState), nil
	}
	return grouprecord.NewSenderKeyFromBytes(b, s.ser.SenderKeyRecord, s.ser.SenderKeyState)
}

// StoreSenderKey implements libsignal's groups store.SenderKey.
func (s *signalStore) StoreSenderKey(_ context.Context, n *protocol.SenderKeyName, r *grouprecord.SenderKey) error {
	return s.kv.Put(senderKeyKey(n), r.Serialize())
}

// deleteSenderKey forgets a sender's key in a group: this device's own
// before a rotation, or a removed member's.
func (s *signalStore) deleteSenderKey(n *protocol.SenderKeyName) error {
	return s.kv.Delete(senderKeyKey(n))
}
