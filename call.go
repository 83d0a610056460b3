package herald

import (
	"fmt"
	"time"
)

// CallState is where a call is in its life.
type CallState string

// Call states. A call rings until the callee answers, declines or the
// ring times out, is active until either side hangs up, then has ended.
const (
	CallRinging CallState = "ringing"
	CallActive  CallState = "active"
	CallEnded   CallState = "ended"
)

// Call outcomes, recorded when a call ends.
const (
	CallOutcomeEnded    = "ended"    // answered, then hung up
	CallOutcomeMissed   = "missed"   // nobody answered, or the caller gave up first
	CallOutcomeDeclined = "declined" // the callee declined
	CallOutcomeBusy     = "busy"     // the callee was in another call
)

// Call limits.
const (
	// CallRingTimeout is how long a call rings before it counts as missed.
	CallRingTimeout = 45 * time.Second
	// CallMaxLength bounds an active call: after it a call no longer
	// makes its people busy, so a call whose hang-up never arrived
	// (both devices vanished) does not block them for ever.
	CallMaxLength = 6 * time.Hour
	// MaxCallSDP bounds a session description, MaxCallCandidate an ICE
	// candidate: a browser's are a few KiB and a few hundred bytes.
	MaxCallSDP       = 16 << 10
	MaxCallCandidate = 1 << 10
	// MaxCallCandidates bounds the candidates one device sends in a call.
	MaxCallCandidates = 64
)

// Call is a 1:1 voice or video call in a direct chat. Herald carries its
// signalling; the media flows between the devices (WebRTC).
type Call struct {
	ID           string // random, chosen by the server
	ChatID       int64
	CallerID     int64
	CalleeID     int64
	CallerDevice int64 // the device that called
	CalleeDevice int64 // the device that answered; 0 until then
	Video        bool
	State        CallState
	Outcome      string // once ended
	StartedAt    time.Time
	AcceptedAt   time.Time
	EndedAt      time.Time
}

// Busy reports whether the call still occupies its people at t.
func (c Call) Busy(t time.Time) bool {
	switch c.State {
	case CallRinging:
		return t.Sub(c.StartedAt) < CallRingTimeout
	case CallActive:
		return t.Sub(c.AcceptedAt) < CallMaxLength
	}
	return false
}

// Duration is how long an answered call lasted.
func (c Call) Duration() time.Duration {
	if c.AcceptedAt.IsZero() || c.EndedAt.Before(c.AcceptedAt) {
		return 0
	}
	return c.EndedAt.Sub(c.AcceptedAt)
}

// CallRecord is what an ended call leaves in its chat, inside the
// service message's extras; each client words it from its own side
// ("Outgoing call, 3:42", "Missed call").
type CallRecord struct {
	Video      bool   `json:"v,omitempty"`
	Outcome    string `json:"o"`
	DurationMS int64  `json:"d,omitempty"`
}

// CallText is a call's service message as text, for clients that do not
// read the record: the same words for both sides.
func CallText(caller, callee string, r CallRecord) string {
	kind := "call"
	if r.Video {
		kind = "video call"
	}
	switch r.Outcome {
	case CallOutcomeEnded:
		return fmt.Sprintf("@%s %s with @%s, %s", caller, kind, callee, ClockDuration(time.Duration(r.DurationMS)*time.Millisecond))
	case CallOutcomeDeclined:
		return fmt.Sprintf("@%s declined a %s from @%s", callee, kind, caller)
	case CallOutcomeBusy:
		return fmt.Sprintf("@%s was busy for a %s from @%s", callee, kind, caller)
	default:
		return fmt.Sprintf("Missed %s from @%s to @%s", kind, caller, callee)
	}
}

// ClockDuration writes a call's length as a clock does: 0:07, 3:42, 1:02:09.
func ClockDuration(d time.Duration) string {
	s := int64(d / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
