package herald

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Limits of secret chats (see docs/SECRET.md).
const (
	// MaxEnvelopeBytes bounds one envelope's ciphertext. Clients pad
	// before encrypting, so a text message of MaxTextRunes characters fits
	// with room for a file reference.
	MaxEnvelopeBytes = 24 << 10
	// MaxEnvelopesPerSend bounds the devices one secret message is
	// encrypted for: the recipient's and the sender's other devices.
	MaxEnvelopesPerSend = 64
	// MaxPreKeysPerUpload bounds one batch of one-time prekeys.
	MaxPreKeysPerUpload = 200
	// MaxPreKeysStored bounds how many unclaimed one-time prekeys the
	// server keeps for one device.
	MaxPreKeysStored = 1000
	// LowPreKeys is the supply below which a device is told to upload more.
	LowPreKeys = 20
	// MaxEnvelopePage is how many envelopes one fetch returns.
	MaxEnvelopePage = 200
	// DefaultEnvelopeRetention is how long an undelivered envelope waits
	// for its device before the server deletes it.
	DefaultEnvelopeRetention = 30 * 24 * time.Hour
	// MaxKeyBytes bounds a public key or signature as the wire carries it.
	MaxKeyBytes = 128
)

// EnvelopeType says which Signal message an envelope's ciphertext is:
// the first messages of a session carry the X3DH prekey header.
type EnvelopeType int

// Envelope types, as libsignal numbers its ciphertext messages.
const (
	EnvelopeWhisper EnvelopeType = 2 // a Double Ratchet message of an established session
	EnvelopePreKey  EnvelopeType = 3 // a message that also starts a session (X3DH)
	// EnvelopeSenderKey is a secret group's message: one sender-key
	// ciphertext, the same for every member device (docs/SECRET.md).
	EnvelopeSenderKey EnvelopeType = 4
)

// MaxSecretGroupMembers bounds a secret group: each member's devices get
// every message's one ciphertext, and each sender's key is distributed
// to every member device.
const MaxSecretGroupMembers = 1000

// SecretGroupMember is a member of a secret group as the server keeps it:
// enough to fan ciphertext out and to let admins change the membership.
// The group's title and messages live only on the devices.
type SecretGroupMember struct {
	UserID int64
	Admin  bool
}

// PreKey is a device's public one-time prekey.
type PreKey struct {
	ID        uint32
	PublicKey []byte
}

// SignedPreKey is a device's medium-term public prekey with its
// identity key's signature over it.
type SignedPreKey struct {
	ID        uint32
	PublicKey []byte
	Signature []byte
	CreatedAt time.Time
}

// DeviceKeys is what a device publishes so others can start Signal
// sessions with it. Only public keys: private keys never leave the device.
type DeviceKeys struct {
	UserID         int64
	DeviceID       int64
	RegistrationID uint32
	IdentityKey    []byte
	Signed         SignedPreKey
}

// Bundle is a device's prekey bundle as handed to one sender: its keys
// and, while the supply lasts, a one-time prekey that nobody else gets.
type Bundle struct {
	DeviceKeys
	PreKey *PreKey // nil once the device's one-time prekeys are exhausted
}

// Envelope is one encrypted secret message for one device. The server
// stores and relays it and cannot read it: Body is Signal ciphertext of a
// padded plaintext.
type Envelope struct {
	ID           int64 // the server's, increasing in the order envelopes were stored
	SenderID     int64
	SenderDevice int64
	UserID       int64 // the recipient device's user
	DeviceID     int64 // the recipient device
	Type         EnvelopeType
	Body         []byte
	SentAt       time.Time
	ExpiresAt    time.Time // the server deletes it, delivered or not, at this time
	GroupID      int64     // the secret group of an EnvelopeSenderKey envelope; 0 otherwise
	// RegistrationID is, on a send, the recipient device's registration id
	// as the sender's session knows it; not stored.
	RegistrationID uint32
}

// KeyStatus tells a device how its published keys stand.
type KeyStatus struct {
	PreKeys  int       // one-time prekeys not yet handed out
	Low      bool      // fewer than LowPreKeys: upload more
	SignedAt time.Time // when the current signed prekey was made; zero if none
	MaxID    uint32    // the highest one-time prekey id ever uploaded
}

// DeviceSet is the devices of one user a secret message must be
// encrypted for.
type DeviceSet struct {
	UserID  int64
	Devices []int64
}

// StaleDevicesError is returned when a secret message was encrypted for
// a device list that is no longer current: a device was added (Missing)
// or is gone (Extra). Current lists every device the message must reach.
// The client updates its sessions and sends again. Its kind is Stale.
type StaleDevicesError struct {
	Missing []int64
	Extra   []int64
	Current []DeviceSet
	err     *Error
}

// Stale is the kind of a StaleDevicesError: the request was built on a
// list of devices that changed; fetch the new list and retry.
const Stale Kind = "STALE_DEVICES"

// NewStaleDevices returns the error for a send that missed or named
// devices wrongly.
func NewStaleDevices(missing, extra []int64, current []DeviceSet) *StaleDevicesError {
	slices.Sort(missing)
	slices.Sort(extra)
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, fmt.Sprintf("new devices %v", missing))
	}
	if len(extra) > 0 {
		parts = append(parts, fmt.Sprintf("devices no longer there %v", extra))
	}
	return &StaleDevicesError{Missing: missing, Extra: extra, Current: current,
		err: Errorf(Stale, "the devices changed (%s): encrypt for the current devices and send again", strings.Join(parts, ", "))}
}

// Error implements error with the sentence of the inner *Error.
func (e *StaleDevicesError) Error() string { return e.err.Error() }

// Unwrap gives the *Error inside, so ErrorKind and ErrorMessage see it.
func (e *StaleDevicesError) Unwrap() error { return e.err }
