package service

import (
	"context"

	"github.com/heraldim/herald"
)

// One-time prekeys are a scarce resource of someone else's: each claim
// (keys.bundles) deletes one from every device of the target. So claims
// that take one-time prekeys are limited per requester and per target,
// and once either budget is spent the bundle carries the signed prekey
// alone, as Signal's server does when a device has none left: the
// session still starts (X3DH without the one-time key), with weaker
// forward secrecy for its first message only. A script therefore drains
// at most a target's budget per hour, which is less than the batch a
// device keeps, and the device tops up when it runs low.
const (
	preKeyClaimsPerRequester = 30 // per hour, and the burst
	preKeyClaimsPerTarget    = 50 // per hour, and the burst
)

// preKeyLimits are the keyed buckets of prekey claims.
type preKeyLimits struct {
	requester, target *keyed
}

func newPreKeyLimits(b buckets) *preKeyLimits {
	return &preKeyLimits{
		requester: newKeyed(b, "prekey-requester", preKeyClaimsPerRequester/3600.0, preKeyClaimsPerRequester, "one-time prekey claims"),
		target:    newKeyed(b, "prekey-target", preKeyClaimsPerTarget/3600.0, preKeyClaimsPerTarget, "one-time prekey claims of this user"),
	}
}

// oneTime spends a token of the requester's and of the target's budget,
// before the claim, and reports whether the claim may take one-time
// prekeys. An empty bucket is not an error: the claim goes on without.
func (l *preKeyLimits) oneTime(ctx context.Context, requester, target int64) (bool, error) {
	ok := true
	for _, t := range []struct {
		k  *keyed
		id int64
	}{{l.requester, requester}, {l.target, target}} {
		err := t.k.take(ctx, key(t.id))
		if herald.IsKind(err, herald.RateLimited) {
			ok = false
			continue
		}
		if err != nil {
			return false, err
		}
	}
	return ok, nil
}
