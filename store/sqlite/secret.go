package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
	"github.com/heraldim/herald/store/internal/sqlstore"
)

var _ store.Secret = (*DB)(nil)

func scanKeys(s interface{ Scan(...any) error }) (herald.DeviceKeys, error) {
	var k herald.DeviceKeys
	var reg, sid, at int64
	err := s.Scan(&k.UserID, &k.DeviceID, &reg, &k.IdentityKey, &sid, &k.Signed.PublicKey, &k.Signed.Signature, &at)
	k.RegistrationID, k.Signed.ID, k.Signed.CreatedAt = uint32(reg), uint32(sid), sqlstore.FromMillis(at)
	return k, err
}

// PublishKeys implements store.Secret.
func (db *DB) PublishKeys(ctx context.Context, k herald.DeviceKeys, oneTime []herald.PreKey) (herald.KeyStatus, error) {
	const op = "sqlite.PublishKeys"
	var st herald.KeyStatus
	err := db.do(ctx, func(tx querier) error {
		var owner int64
		if err := tx.QueryRowContext(ctx, sqlstore.DeviceOwner, k.DeviceID).Scan(&owner); errors.Is(err, sql.ErrNoRows) || (err == nil && owner != k.UserID) {
			return herald.Errorf(herald.NotFound, "no such device")
		} else if err != nil {
			return classify(op, err)
		}
		var ident []byte
		var signedAt, maxID int64
		err := tx.QueryRowContext(ctx, sqlstore.DeviceKeyRow, k.DeviceID).Scan(&ident, &signedAt, &maxID)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, sqlstore.InsertKeys, k.DeviceID, k.UserID, int64(k.RegistrationID), k.IdentityKey,
				int64(k.Signed.ID), k.Signed.PublicKey, k.Signed.Signature, sqlstore.Millis(k.Signed.CreatedAt)); err != nil {
				return classify(op, err)
			}
		case err != nil:
			return classify(op, err)
		case !bytes.Equal(ident, k.IdentityKey):
			return herald.Errorf(herald.AlreadyExists, "this device already published a different identity key; a device's identity never changes (log in again to make a new device)")
		case sqlstore.Millis(k.Signed.CreatedAt) > signedAt:
			if _, err := tx.ExecContext(ctx, sqlstore.UpdateSigned, int64(k.Signed.ID), k.Signed.PublicKey, k.Signed.Signature, sqlstore.Millis(k.Signed.CreatedAt), k.DeviceID); err != nil {
				return classify(op, err)
			}
		}
		if len(oneTime) > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, sqlstore.CountPreKeys, k.DeviceID).Scan(&n); err != nil {
				return classify(op, err)
			}
			if n+len(oneTime) > herald.MaxPreKeysStored {
				return herald.Errorf(herald.TooLarge, "the server keeps at most %d one-time prekeys per device; %d are stored", herald.MaxPreKeysStored, n)
			}
			top := maxID
			for _, p := range oneTime {
				if _, err := tx.ExecContext(ctx, sqlstore.InsertPreKey, k.DeviceID, int64(p.ID), p.PublicKey); err != nil {
					return classify(op, err)
				}
				top = max(top, int64(p.ID))
			}
			if top != maxID {
				if _, err := tx.ExecContext(ctx, sqlstore.SetMaxPreKey, top, k.DeviceID); err != nil {
					return classify(op, err)
				}
			}
		}
		var e error
		st, e = keyStatus(ctx, tx, k.DeviceID)
		return e
	})
	return st, err
}

func keyStatus(ctx context.Context, q querier, deviceID int64) (herald.KeyStatus, error) {
	var st herald.KeyStatus
	var at, maxID int64
	err := q.QueryRowContext(ctx, sqlstore.KeyStatus, deviceID).Scan(&at, &maxID, &st.PreKeys)
	if errors.Is(err, sql.ErrNoRows) {
		return herald.KeyStatus{Low: true}, nil
	}
	st.SignedAt, st.MaxID, st.Low = sqlstore.FromMillis(at), uint32(maxID), st.PreKeys < herald.LowPreKeys
	return st, classify("sqlite.KeyStatus", err)
}

// KeyStatus implements store.Secret.
func (db *DB) KeyStatus(ctx context.Context, deviceID int64) (herald.KeyStatus, error) {
	return keyStatus(ctx, db.rq, deviceID)
}

func userKeys(ctx context.Context, q querier, userID int64) ([]herald.DeviceKeys, error) {
	rows, err := q.QueryContext(ctx, sqlstore.UserKeys, userID)
	if err != nil {
		return nil, classify("sqlite.DeviceKeys", err)
	}
	defer rows.Close()
	var out []herald.DeviceKeys
	for rows.Next() {
		k, err := scanKeys(rows)
		if err != nil {
			return nil, classify("sqlite.DeviceKeys", err)
		}
		out = append(out, k)
	}
	return out, classify("sqlite.DeviceKeys", rows.Err())
}

// DeviceKeys implements store.Secret.
func (db *DB) DeviceKeys(ctx context.Context, userID int64) ([]herald.DeviceKeys, error) {
	return userKeys(ctx, db.rq, userID)
}

// ClaimBundles implements store.Secret.
func (db *DB) ClaimBundles(ctx context.Context, userID int64, deviceIDs []int64) ([]herald.Bundle, error) {
	var out []herald.Bundle
	err := db.do(ctx, func(tx querier) error {
		out = out[:0]
		keys, err := userKeys(ctx, tx, userID)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if len(deviceIDs) > 0 && !contains(deviceIDs, k.DeviceID) {
				continue
			}
			b := herald.Bundle{DeviceKeys: k}
			var id int64
			var pub []byte
			err := tx.QueryRowContext(ctx, sqlstore.ClaimPreKey, k.DeviceID, k.DeviceID).Scan(&id, &pub)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return classify("sqlite.ClaimBundles", err)
			default:
				b.PreKey = &herald.PreKey{ID: uint32(id), PublicKey: pub}
			}
			out = append(out, b)
		}
		return nil
	})
	return out, err
}

func contains(ids []int64, id int64) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}

// Enqueue implements store.Secret.
func (db *DB) Enqueue(ctx context.Context, envs []herald.Envelope) ([]herald.Envelope, error) {
	out := make([]herald.Envelope, len(envs))
	err := db.do(ctx, func(tx querier) error {
		for i, e := range envs {
			if err := tx.QueryRowContext(ctx, sqlstore.InsertEnvelope, e.DeviceID, e.UserID, e.SenderID, e.SenderDevice, int64(e.Type), e.Body,
				sqlstore.Millis(e.SentAt), sqlstore.Millis(e.ExpiresAt)).Scan(&e.ID); err != nil {
				return classify("sqlite.Enqueue", err)
			}
			out[i] = e
		}
		return nil
	})
	return out, err
}

func scanEnvelope(s interface{ Scan(...any) error }) (herald.Envelope, error) {
	var e herald.Envelope
	var typ, sent, exp int64
	err := s.Scan(&e.ID, &e.DeviceID, &e.UserID, &e.SenderID, &e.SenderDevice, &typ, &e.Body, &sent, &exp)
	e.Type, e.SentAt, e.ExpiresAt = herald.EnvelopeType(typ), sqlstore.FromMillis(sent), sqlstore.FromMillis(exp)
	return e, err
}

// Envelopes implements store.Secret.
func (db *DB) Envelopes(ctx context.Context, deviceID int64, now time.Time, limit int) ([]herald.Envelope, error) {
	rows, err := db.rq.QueryContext(ctx, sqlstore.Envelopes, deviceID, sqlstore.Millis(now), limit)
	if err != nil {
		return nil, classify("sqlite.Envelopes", err)
	}
	defer rows.Close()
	var out []herald.Envelope
	for rows.Next() {
		e, err := scanEnvelope(rows)
		if err != nil {
			return nil, classify("sqlite.Envelopes", err)
		}
		out = append(out, e)
	}
	return out, classify("sqlite.Envelopes", rows.Err())
}

// Ack implements store.Secret.
func (db *DB) Ack(ctx context.Context, deviceID int64, ids []int64) (int, error) {
	n := 0
	err := db.do(ctx, func(tx querier) error {
		n = 0
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, sqlstore.AckEnvelope, deviceID, id)
			if err != nil {
				return classify("sqlite.Ack", err)
			}
			k, _ := res.RowsAffected()
			n += int(k)
		}
		return nil
	})
	return n, err
}

// ExpireEnvelopes implements store.Secret.
func (db *DB) ExpireEnvelopes(ctx context.Context, now time.Time, limit int) (int, error) {
	n := 0
	err := db.do(ctx, func(tx querier) error {
		n = 0
		for _, q := range []struct {
			sql  string
			args []any
		}{{sqlstore.ExpireEnvelopes, []any{sqlstore.Millis(now), limit}}, {sqlstore.OrphanEnvelopes, []any{limit}}} {
			res, err := tx.ExecContext(ctx, q.sql, q.args...)
			if err != nil {
				return classify("sqlite.ExpireEnvelopes", err)
			}
			k, _ := res.RowsAffected()
			n += int(k)
		}
		for _, q := range []string{sqlstore.OrphanKeys, sqlstore.OrphanPreKeys} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return classify("sqlite.ExpireEnvelopes", err)
			}
		}
		return nil
	})
	return n, err
}

// GrantFile implements store.Secret.
func (db *DB) GrantFile(ctx context.Context, fileID string, userIDs []int64) error {
	return db.do(ctx, func(tx querier) error {
		for _, u := range userIDs {
			if _, err := tx.ExecContext(ctx, sqlstore.GrantFile, fileID, u); err != nil {
				return classify("sqlite.GrantFile", err)
			}
		}
		return nil
	})
}

// FileGranted implements store.Secret.
func (db *DB) FileGranted(ctx context.Context, userID int64, fileID string) (bool, error) {
	var ok bool
	err := db.rq.QueryRowContext(ctx, sqlstore.FileGranted, fileID, userID).Scan(&ok)
	return ok, classify("sqlite.FileGranted", err)
}

// ForgetDevice implements store.Secret.
func (db *DB) ForgetDevice(ctx context.Context, deviceID int64) error {
	return db.do(ctx, func(tx querier) error {
		for _, q := range []string{sqlstore.ForgetKeys, sqlstore.ForgetPreKeys, sqlstore.ForgetEnvelopes} {
			if _, err := tx.ExecContext(ctx, q, deviceID); err != nil {
				return classify("sqlite.ForgetDevice", err)
			}
		}
		return nil
	})
}
