package store

import (
	"context"
	"time"

	"github.com/heraldim/herald"
)

// Secret is what secret chats need from the store: devices' public keys
// and per-device queues of envelopes. It is separate from Store so the
// rest of the store can be brought up without it; both stores implement
// it. The store never sees a private key or a plaintext.
type Secret interface {
	// PublishKeys sets a device's identity key (AlreadyExists if the
	// device already has a different one: a device's identity never
	// changes), replaces its signed prekey if k.Signed is newer than the
	// stored one, and adds one-time prekeys whose ids it does not have yet,
	// keeping at most herald.MaxPreKeysStored. NotFound if the device does
	// not exist.
	PublishKeys(ctx context.Context, k herald.DeviceKeys, oneTime []herald.PreKey) (herald.KeyStatus, error)
	// KeyStatus returns how a device's published keys stand.
	KeyStatus(ctx context.Context, deviceID int64) (herald.KeyStatus, error)
	// DeviceKeys lists the published keys of userID's devices that still
	// exist, oldest device first.
	DeviceKeys(ctx context.Context, userID int64) ([]herald.DeviceKeys, error)
	// ClaimBundles returns a bundle for each of userID's devices with keys
	// (only those in deviceIDs, if it is not empty), each with one of the
	// device's one-time prekeys, which is deleted in the same transaction:
	// no two callers ever get the same one. A device whose supply is
	// exhausted gets a bundle without one.
	ClaimBundles(ctx context.Context, userID int64, deviceIDs []int64) ([]herald.Bundle, error)
	// Enqueue stores envelopes (all or none) and returns them with their
	// ids, in the order given.
	Enqueue(ctx context.Context, envs []herald.Envelope) ([]herald.Envelope, error)
	// Envelopes returns up to limit envelopes for deviceID that have not
	// expired at now, oldest first.
	Envelopes(ctx context.Context, deviceID int64, now time.Time, limit int) ([]herald.Envelope, error)
	// Ack deletes the given envelopes of deviceID; ids that are not (or no
	// longer) its own are ignored. It returns how many it deleted.
	Ack(ctx context.Context, deviceID int64, ids []int64) (int, error)
	// ExpireEnvelopes deletes up to limit envelopes whose ExpiresAt is at
	// or before now, and the envelopes and keys of devices that no longer
	// exist, and returns how many envelopes it deleted.
	ExpireEnvelopes(ctx context.Context, now time.Time, limit int) (int, error)
	// ForgetDevice deletes a device's keys and envelopes, when the device
	// is logged out or revoked (its id may be given to a later device).
	ForgetDevice(ctx context.Context, deviceID int64) error
	// GrantFile lets userIDs read a file sent in a secret chat.
	GrantFile(ctx context.Context, fileID string, userIDs []int64) error
	// FileGranted reports whether userID was granted the file.
	FileGranted(ctx context.Context, userID int64, fileID string) (bool, error)
	// CreateSecretGroup makes a secret group with members (the creator
	// among them, as an admin) and returns its id.
	CreateSecretGroup(ctx context.Context, creator int64, members []int64, at time.Time) (int64, error)
	// SecretGroupMembers lists a secret group's members, by user id.
	// NotFound if there is no such group.
	SecretGroupMembers(ctx context.Context, groupID int64) ([]herald.SecretGroupMember, error)
	// AddSecretGroupMembers adds users to a secret group (not as admins);
	// those already in it are left as they are. NotFound if there is no
	// such group.
	AddSecretGroupMembers(ctx context.Context, groupID int64, userIDs []int64) error
	// RemoveSecretGroupMember takes a user out of a secret group; it
	// reports whether they were in it.
	RemoveSecretGroupMember(ctx context.Context, groupID, userID int64) (bool, error)
}
