package sqlstore

import (
	"context"
	"time"

	"github.com/heraldim/herald"
)

const callCols = `id, chat_id, caller_id, callee_id, caller_device, callee_device, video, state, outcome, started_at, accepted_at, ended_at`

func scanCall(r Row) (herald.Call, error) {
	var c herald.Call
	var video int64
	var state string
	var started, accepted, ended int64
	err := r.Scan(&c.ID, &c.ChatID, &c.CallerID, &c.CalleeID, &c.CallerDevice, &c.CalleeDevice, &video, &state, &c.Outcome, &started, &accepted, &ended)
	c.Video, c.State = video != 0, herald.CallState(state)
	c.StartedAt, c.AcceptedAt, c.EndedAt = FromMillis(started), FromMillis(accepted), FromMillis(ended)
	return c, err
}

// Call implements store.Store.
func (r Reads) Call(ctx context.Context, id string) (herald.Call, error) {
	c, err := scanCall(r.q.QueryRow(ctx, `SELECT `+callCols+` FROM calls WHERE id = ?`, id))
	if NoRows(err) {
		return c, herald.Errorf(herald.NotFound, "no such call")
	}
	return c, r.d.wrap("Call", err)
}

// CreateCall implements store.Store: the busy check and the insert run
// in one transaction, so two calls to one person cannot both ring.
func (d Dialect) CreateCall(ctx context.Context, tx Querier, c herald.Call) (int64, error) {
	for _, u := range []int64{c.CallerID, c.CalleeID} {
		busy, err := d.inCall(ctx, tx, u, c.StartedAt)
		if err != nil {
			return 0, err
		}
		if busy {
			return u, herald.Errorf(herald.AlreadyExists, "busy in another call")
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO calls (`+callCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.ChatID, c.CallerID, c.CalleeID, c.CallerDevice, c.CalleeDevice, Flag(c.Video), string(c.State), c.Outcome,
		Millis(c.StartedAt), Millis(c.AcceptedAt), Millis(c.EndedAt))
	return 0, d.wrap("CreateCall", err)
}

// inCall reports whether userID has a call that still occupies them at t.
func (d Dialect) inCall(ctx context.Context, tx Querier, userID int64, t time.Time) (bool, error) {
	rows, err := tx.Query(ctx, `SELECT `+callCols+` FROM calls WHERE caller_id = ? AND state <> 'ended'
		UNION ALL SELECT `+callCols+` FROM calls WHERE callee_id = ? AND state <> 'ended'`, userID, userID)
	if err != nil {
		return false, d.wrap("CreateCall", err)
	}
	defer rows.Close()
	busy := false
	for rows.Next() {
		c, err := scanCall(rows)
		if err != nil {
			return false, d.wrap("CreateCall", err)
		}
		busy = busy || c.Busy(t)
	}
	return busy, d.wrap("CreateCall", rows.Err())
}

// UpdateCall implements store.Store.
func (d Dialect) UpdateCall(ctx context.Context, tx Querier, c herald.Call, from herald.CallState) (bool, error) {
	n, err := tx.Exec(ctx, `UPDATE calls SET callee_device = ?, state = ?, outcome = ?, accepted_at = ?, ended_at = ? WHERE id = ? AND state = ?`,
		c.CalleeDevice, string(c.State), c.Outcome, Millis(c.AcceptedAt), Millis(c.EndedAt), c.ID, string(from))
	return n == 1, d.wrap("UpdateCall", err)
}
