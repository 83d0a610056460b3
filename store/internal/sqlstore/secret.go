package sqlstore

import (
	"bytes"
	"context"
	"slices"
	"time"

	"github.com/heraldim/herald"
)

// KeyCols are the columns of a device_keys row, in the order scanners
// expect.
const KeyCols = `k.user_id, k.device_id, k.registration_id, k.identity_key, k.signed_id, k.signed_key, k.signed_sig, k.signed_at`

// Queries on secret chats' keys and envelopes.
const (
	DeviceOwner     = `SELECT user_id FROM devices WHERE id = ?`
	DeviceKeyRow    = `SELECT identity_key, signed_at, max_prekey_id FROM device_keys WHERE device_id = ?`
	InsertKeys      = `INSERT INTO device_keys (device_id, user_id, registration_id, identity_key, signed_id, signed_key, signed_sig, signed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	UpdateSigned    = `UPDATE device_keys SET signed_id = ?, signed_key = ?, signed_sig = ?, signed_at = ? WHERE device_id = ?`
	SetMaxPreKey    = `UPDATE device_keys SET max_prekey_id = ? WHERE device_id = ?`
	InsertPreKey    = `INSERT INTO one_time_prekeys (device_id, key_id, public_key) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`
	CountPreKeys    = `SELECT count(*) FROM one_time_prekeys WHERE device_id = ?`
	KeyStatus       = `SELECT signed_at, max_prekey_id, (SELECT count(*) FROM one_time_prekeys p WHERE p.device_id = k.device_id) FROM device_keys k WHERE k.device_id = ?`
	UserKeys        = `SELECT ` + KeyCols + ` FROM device_keys k JOIN devices d ON d.id = k.device_id WHERE k.user_id = ? ORDER BY k.device_id`
	EnvelopeCols    = `id, device_id, user_id, sender_id, sender_device, type, body, sent_at, expires_at, group_id`
	InsertEnvelope  = `INSERT INTO envelopes (device_id, user_id, sender_id, sender_device, type, body, sent_at, expires_at, group_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
	Envelopes       = `SELECT ` + EnvelopeCols + ` FROM envelopes WHERE device_id = ? AND expires_at > ? ORDER BY id LIMIT ?`
	AckEnvelope     = `DELETE FROM envelopes WHERE device_id = ? AND id = ?`
	ExpireEnvelopes = `DELETE FROM envelopes WHERE id IN (SELECT id FROM envelopes WHERE expires_at <= ? ORDER BY id LIMIT ?)`
	// The envelopes and keys of devices logged out or revoked: nobody
	// will fetch them, and a sender must not encrypt for them again.
	OrphanEnvelopes = `DELETE FROM envelopes WHERE id IN (SELECT e.id FROM envelopes e WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = e.device_id) LIMIT ?)`
	OrphanKeys      = `DELETE FROM device_keys WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = device_keys.device_id)`
	OrphanPreKeys   = `DELETE FROM one_time_prekeys WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = one_time_prekeys.device_id)`
	ForgetKeys      = `DELETE FROM device_keys WHERE device_id = ?`
	ForgetPreKeys   = `DELETE FROM one_time_prekeys WHERE device_id = ?`
	ForgetEnvelopes = `DELETE FROM envelopes WHERE device_id = ?`
	GrantFile       = `INSERT INTO file_grants (file_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING`
	FileGranted     = `SELECT EXISTS (SELECT 1 FROM file_grants WHERE file_id = ? AND user_id = ?)`
	// ClaimPreKey (SQLite) deletes and returns a device's lowest one-time
	// prekey. SQLite has one writer, so no two claims interleave.
	ClaimPreKey = `DELETE FROM one_time_prekeys WHERE device_id = ? AND key_id = (SELECT min(key_id) FROM one_time_prekeys WHERE device_id = ?) RETURNING key_id, public_key`
	// ClaimPreKeyLocked (PostgreSQL) skips rows another transaction is
	// claiming, so two concurrent claims take two different keys instead
	// of the second finding its choice gone and getting none.
	ClaimPreKeyLocked = `DELETE FROM one_time_prekeys WHERE device_id = ? AND key_id = (SELECT key_id FROM one_time_prekeys WHERE device_id = ? ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING key_id, public_key`
)

func scanKeys(s Row) (herald.DeviceKeys, error) {
	var k herald.DeviceKeys
	var reg, sid, at int64
	err := s.Scan(&k.UserID, &k.DeviceID, &reg, &k.IdentityKey, &sid, &k.Signed.PublicKey, &k.Signed.Signature, &at)
	k.RegistrationID, k.Signed.ID, k.Signed.CreatedAt = uint32(reg), uint32(sid), FromMillis(at)
	return k, err
}

func scanEnvelope(s Row) (herald.Envelope, error) {
	var e herald.Envelope
	var typ, sent, exp int64
	err := s.Scan(&e.ID, &e.DeviceID, &e.UserID, &e.SenderID, &e.SenderDevice, &typ, &e.Body, &sent, &exp, &e.GroupID)
	e.Type, e.SentAt, e.ExpiresAt = herald.EnvelopeType(typ), FromMillis(sent), FromMillis(exp)
	return e, err
}

// PublishKeys is store.Secret's PublishKeys inside the writer's
// transaction tx.
func (d Dialect) PublishKeys(ctx context.Context, tx Querier, k herald.DeviceKeys, oneTime []herald.PreKey) (herald.KeyStatus, error) {
	const op = "PublishKeys"
	var owner int64
	if err := tx.QueryRow(ctx, DeviceOwner, k.DeviceID).Scan(&owner); NoRows(err) || (err == nil && owner != k.UserID) {
		return herald.KeyStatus{}, herald.Errorf(herald.NotFound, "no such device")
	} else if err != nil {
		return herald.KeyStatus{}, d.wrap(op, err)
	}
	var ident []byte
	var signedAt, maxID int64
	err := tx.QueryRow(ctx, DeviceKeyRow, k.DeviceID).Scan(&ident, &signedAt, &maxID)
	switch {
	case NoRows(err):
		if _, err := tx.Exec(ctx, InsertKeys, k.DeviceID, k.UserID, int64(k.RegistrationID), k.IdentityKey,
			int64(k.Signed.ID), k.Signed.PublicKey, k.Signed.Signature, Millis(k.Signed.CreatedAt)); err != nil {
			return herald.KeyStatus{}, d.wrap(op, err)
		}
	case err != nil:
		return herald.KeyStatus{}, d.wrap(op, err)
	case !bytes.Equal(ident, k.IdentityKey):
		return herald.KeyStatus{}, herald.Errorf(herald.AlreadyExists, "this device already published a different identity key; a device's identity never changes (log in again to make a new device)")
	case Millis(k.Signed.CreatedAt) > signedAt:
		if _, err := tx.Exec(ctx, UpdateSigned, int64(k.Signed.ID), k.Signed.PublicKey, k.Signed.Signature, Millis(k.Signed.CreatedAt), k.DeviceID); err != nil {
			return herald.KeyStatus{}, d.wrap(op, err)
		}
	}
	if len(oneTime) > 0 {
		var n int64
		if err := tx.QueryRow(ctx, CountPreKeys, k.DeviceID).Scan(&n); err != nil {
			return herald.KeyStatus{}, d.wrap(op, err)
		}
		if int(n)+len(oneTime) > herald.MaxPreKeysStored {
			return herald.KeyStatus{}, herald.Errorf(herald.TooLarge, "the server keeps at most %d one-time prekeys per device; %d are stored", herald.MaxPreKeysStored, n)
		}
		top := maxID
		for _, p := range oneTime {
			if _, err := tx.Exec(ctx, InsertPreKey, k.DeviceID, int64(p.ID), p.PublicKey); err != nil {
				return herald.KeyStatus{}, d.wrap(op, err)
			}
			top = max(top, int64(p.ID))
		}
		if top != maxID {
			if _, err := tx.Exec(ctx, SetMaxPreKey, top, k.DeviceID); err != nil {
				return herald.KeyStatus{}, d.wrap(op, err)
			}
		}
	}
	return d.keyStatus(ctx, tx, k.DeviceID)
}

func (d Dialect) keyStatus(ctx context.Context, q Querier, deviceID int64) (herald.KeyStatus, error) {
	var st herald.KeyStatus
	var at, maxID, n int64
	err := q.QueryRow(ctx, KeyStatus, deviceID).Scan(&at, &maxID, &n)
	if NoRows(err) {
		return herald.KeyStatus{Low: true}, nil
	}
	st.PreKeys = int(n)
	st.SignedAt, st.MaxID, st.Low = FromMillis(at), uint32(maxID), st.PreKeys < herald.LowPreKeys
	return st, d.wrap("KeyStatus", err)
}

// KeyStatus implements store.Secret.
func (r Reads) KeyStatus(ctx context.Context, deviceID int64) (herald.KeyStatus, error) {
	return r.d.keyStatus(ctx, r.q, deviceID)
}

func (d Dialect) userKeys(ctx context.Context, q Querier, userID int64) ([]herald.DeviceKeys, error) {
	out, err := scanAll(ctx, q, scanKeys, UserKeys, userID)
	return out, d.wrap("DeviceKeys", err)
}

// DeviceKeys implements store.Secret.
func (r Reads) DeviceKeys(ctx context.Context, userID int64) ([]herald.DeviceKeys, error) {
	return r.d.userKeys(ctx, r.q, userID)
}

// ClaimBundles is store.Secret's ClaimBundles inside the writer's
// transaction tx; claim is the engine's ClaimPreKey or ClaimPreKeyLocked.
func (d Dialect) ClaimBundles(ctx context.Context, tx Querier, claim string, userID int64, deviceIDs []int64) ([]herald.Bundle, error) {
	keys, err := d.userKeys(ctx, tx, userID)
	if err != nil {
		return nil, err
	}
	var out []herald.Bundle
	for _, k := range keys {
		if len(deviceIDs) > 0 && !slices.Contains(deviceIDs, k.DeviceID) {
			continue
		}
		b := herald.Bundle{DeviceKeys: k}
		var id int64
		var pub []byte
		err := tx.QueryRow(ctx, claim, k.DeviceID, k.DeviceID).Scan(&id, &pub)
		switch {
		case NoRows(err):
		case err != nil:
			return nil, d.wrap("ClaimBundles", err)
		default:
			b.PreKey = &herald.PreKey{ID: uint32(id), PublicKey: pub}
		}
		out = append(out, b)
	}
	return out, nil
}

// Enqueue is store.Secret's Enqueue inside the writer's transaction tx.
func (d Dialect) Enqueue(ctx context.Context, tx Querier, envs []herald.Envelope) ([]herald.Envelope, error) {
	out := make([]herald.Envelope, len(envs))
	for i, e := range envs {
		if err := tx.QueryRow(ctx, InsertEnvelope, e.DeviceID, e.UserID, e.SenderID, e.SenderDevice, int64(e.Type), e.Body,
			Millis(e.SentAt), Millis(e.ExpiresAt), e.GroupID).Scan(&e.ID); err != nil {
			return nil, d.wrap("Enqueue", err)
		}
		out[i] = e
	}
	return out, nil
}

// Envelopes implements store.Secret.
func (r Reads) Envelopes(ctx context.Context, deviceID int64, now time.Time, limit int) ([]herald.Envelope, error) {
	out, err := scanAll(ctx, r.q, scanEnvelope, Envelopes, deviceID, Millis(now), limit)
	return out, r.d.wrap("Envelopes", err)
}

// Ack is store.Secret's Ack inside the writer's transaction tx.
func (d Dialect) Ack(ctx context.Context, tx Querier, deviceID int64, ids []int64) (int, error) {
	n := 0
	for _, id := range ids {
		k, err := tx.Exec(ctx, AckEnvelope, deviceID, id)
		if err != nil {
			return 0, d.wrap("Ack", err)
		}
		n += int(k)
	}
	return n, nil
}

// ExpireEnvelopes is store.Secret's ExpireEnvelopes inside the writer's
// transaction tx.
func (d Dialect) ExpireEnvelopes(ctx context.Context, tx Querier, now time.Time, limit int) (int, error) {
	n := 0
	for _, q := range []struct {
		sql  string
		args []any
	}{{ExpireEnvelopes, []any{Millis(now), limit}}, {OrphanEnvelopes, []any{limit}}} {
		k, err := tx.Exec(ctx, q.sql, q.args...)
		if err != nil {
			return 0, d.wrap("ExpireEnvelopes", err)
		}
		n += int(k)
	}
	for _, q := range []string{OrphanKeys, OrphanPreKeys} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return 0, d.wrap("ExpireEnvelopes", err)
		}
	}
	return n, nil
}

// GrantFile is store.Secret's GrantFile inside the writer's transaction tx.
func (d Dialect) GrantFile(ctx context.Context, tx Querier, fileID string, userIDs []int64) error {
	for _, u := range userIDs {
		if _, err := tx.Exec(ctx, GrantFile, fileID, u); err != nil {
			return d.wrap("GrantFile", err)
		}
	}
	return nil
}

// FileGranted implements store.Secret.
func (r Reads) FileGranted(ctx context.Context, userID int64, fileID string) (bool, error) {
	var ok bool
	err := r.q.QueryRow(ctx, FileGranted, fileID, userID).Scan(&ok)
	return ok, r.d.wrap("FileGranted", err)
}

// ForgetDevice is store.Secret's ForgetDevice inside the writer's
// transaction tx.
func (d Dialect) ForgetDevice(ctx context.Context, tx Querier, deviceID int64) error {
	for _, q := range []string{ForgetKeys, ForgetPreKeys, ForgetEnvelopes} {
		if _, err := tx.Exec(ctx, q, deviceID); err != nil {
			return d.wrap("ForgetDevice", err)
		}
	}
	return nil
}

// Queries on secret groups.
const (
	InsertSecretGroup  = `INSERT INTO secret_groups (created_by, created_at) VALUES (?, ?) RETURNING id`
	InsertSecretMember = `INSERT INTO secret_group_members (group_id, user_id, admin) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`
	SecretGroupExists  = `SELECT EXISTS (SELECT 1 FROM secret_groups WHERE id = ?)`
	SecretGroupMembers = `SELECT user_id, admin FROM secret_group_members WHERE group_id = ? ORDER BY user_id`
	DeleteSecretMember = `DELETE FROM secret_group_members WHERE group_id = ? AND user_id = ?`
)

// CreateSecretGroup is store.Secret's CreateSecretGroup inside the
// writer's transaction tx.
func (d Dialect) CreateSecretGroup(ctx context.Context, tx Querier, creator int64, members []int64, at time.Time) (int64, error) {
	var id int64
	if err := tx.QueryRow(ctx, InsertSecretGroup, creator, Millis(at)).Scan(&id); err != nil {
		return 0, d.wrap("CreateSecretGroup", err)
	}
	if _, err := tx.Exec(ctx, InsertSecretMember, id, creator, 1); err != nil {
		return 0, d.wrap("CreateSecretGroup", err)
	}
	for _, u := range members {
		if _, err := tx.Exec(ctx, InsertSecretMember, id, u, 0); err != nil {
			return 0, d.wrap("CreateSecretGroup", err)
		}
	}
	return id, nil
}

// SecretGroupMembers implements store.Secret.
func (r Reads) SecretGroupMembers(ctx context.Context, groupID int64) ([]herald.SecretGroupMember, error) {
	var ok bool
	if err := r.q.QueryRow(ctx, SecretGroupExists, groupID).Scan(&ok); err != nil {
		return nil, r.d.wrap("SecretGroupMembers", err)
	}
	if !ok {
		return nil, herald.Errorf(herald.NotFound, "no such secret group")
	}
	out, err := scanAll(ctx, r.q, func(s Row) (herald.SecretGroupMember, error) {
		var m herald.SecretGroupMember
		var admin int64
		err := s.Scan(&m.UserID, &admin)
		m.Admin = admin != 0
		return m, err
	}, SecretGroupMembers, groupID)
	return out, r.d.wrap("SecretGroupMembers", err)
}

// AddSecretGroupMembers is store.Secret's AddSecretGroupMembers inside
// the writer's transaction tx.
func (d Dialect) AddSecretGroupMembers(ctx context.Context, tx Querier, groupID int64, userIDs []int64) error {
	var ok bool
	if err := tx.QueryRow(ctx, SecretGroupExists, groupID).Scan(&ok); err != nil {
		return d.wrap("AddSecretGroupMembers", err)
	}
	if !ok {
		return herald.Errorf(herald.NotFound, "no such secret group")
	}
	for _, u := range userIDs {
		if _, err := tx.Exec(ctx, InsertSecretMember, groupID, u, 0); err != nil {
			return d.wrap("AddSecretGroupMembers", err)
		}
	}
	return nil
}

// RemoveSecretGroupMember is store.Secret's RemoveSecretGroupMember
// inside the writer's transaction tx.
func (d Dialect) RemoveSecretGroupMember(ctx context.Context, tx Querier, groupID, userID int64) (bool, error) {
	n, err := tx.Exec(ctx, DeleteSecretMember, groupID, userID)
	if err != nil {
		return false, d.wrap("RemoveSecretGroupMember", err)
	}
	return n > 0, nil
}
