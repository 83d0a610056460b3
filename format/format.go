// Package format holds the few ways Herald's clients put numbers and
// messages into words, so the command line and the web client say the same
// thing: sizes in binary units ("53.2 KiB"), counts with their noun in the
// right number ("1 view", "3 views"), and a message's one-line preview.
//
// The web page has a mirror of these functions in web/static/format.js;
// both are checked against testdata/cases.json.
package format

import (
	"strconv"
	"strings"
	"time"

	"github.com/heraldim/herald"
)

var units = []string{"KiB", "MiB", "GiB", "TiB"}

// Size is n bytes for people: "512 B", "53.2 KiB", "4.8 MiB", "2.0 GiB".
func Size(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	u := -1
	// Move up a unit while the rounded figure would reach 1024.
	for u < len(units)-1 && v >= 1023.95 {
		v /= 1024
		u++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[u]
}

// Count is n with its noun: "1 view", "0 views", "12,345 subscribers".
// many is the plural; empty means one + "s".
func Count(n int64, one, many string) string {
	if many == "" {
		many = one + "s"
	}
	noun := many
	if n == 1 || n == -1 {
		noun = one
	}
	return Number(n) + " " + noun
}

// Number writes n with a comma between thousands: "1,234,567".
func Number(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Preview is a message in one line after whom it is from: "alice: hi".
// A service message ("@alice set …") already names who did what, so it
// stands alone; so does a message with no sender name.
func Preview(from, text string, service bool) string {
	if service || from == "" {
		return text
	}
	return from + ": " + text
}

// Call is a call's record in its chat, as the person reading it sees it:
// outgoing is whether they placed it. "Outgoing call, 3:42", "Missed
// video call", "Cancelled call".
func Call(outgoing, video bool, outcome string, durationMS int64) string {
	kind := "call"
	if video {
		kind = "video call"
	}
	switch {
	case outcome == "ended" && outgoing:
		return "Outgoing " + kind + ", " + clock(durationMS)
	case outcome == "ended":
		return "Incoming " + kind + ", " + clock(durationMS)
	case outcome == "declined" && outgoing:
		return "Declined " + kind
	case outcome == "declined":
		return "You declined a " + kind
	case outcome == "busy" && outgoing:
		return "Busy: " + kind + " not answered"
	case outgoing:
		return "Cancelled " + kind
	default:
		return "Missed " + kind
	}
}

// clock is a duration as a call shows it: "0:07", "3:42", "1:02:09".
func clock(ms int64) string { return herald.ClockDuration(time.Duration(ms) * time.Millisecond) }
