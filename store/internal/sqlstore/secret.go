package sqlstore

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
	EnvelopeCols    = `id, device_id, user_id, sender_id, sender_device, type, body, sent_at, expires_at`
	InsertEnvelope  = `INSERT INTO envelopes (device_id, user_id, sender_id, sender_device, type, body, sent_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
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
