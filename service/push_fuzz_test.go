package service

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald"
)

// FuzzCheckSubscription feeds arbitrary push.subscribe parameters to the
// check that runs before anything is stored: it never panics, refuses with
// INVALID_ARGUMENT or TOO_LARGE only, and what it accepts is an http(s)
// URL (https unless allowed) of bounded length with a P-256 point and a
// 16-byte secret.
func FuzzCheckSubscription(f *testing.F) {
	k, _ := ecdh.P256().GenerateKey(rand.Reader)
	pub := base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes())
	auth := base64.RawURLEncoding.EncodeToString(make([]byte, 16))
	f.Add("https://push.example/abc", pub, auth, false)
	f.Add("http://127.0.0.1:8080/x", pub, auth, true)
	f.Add("http://127.0.0.1:8080/x", pub, auth, false)
	f.Add("https://u:p@push.example/", pub+"==", auth+"==", false)
	f.Add("ftp://x", "", "", true)
	f.Add("https://push.example/"+strings.Repeat("a", 2000), pub, auth, false)
	f.Add("https://push.example/", "BAAA", "AAAA", false)
	f.Fuzz(func(t *testing.T, endpoint, p256dh, a string, allowHTTP bool) {
		err := checkSubscription(endpoint, p256dh, a, allowHTTP)
		if err != nil {
			if k := herald.ErrorKind(err); k != herald.Invalid && k != herald.TooLarge {
				t.Fatalf("kind %s: %v", k, err)
			}
			return
		}
		u, perr := url.Parse(endpoint)
		if perr != nil || len(endpoint) > herald.MaxPushEndpoint || u.Host == "" || !(u.Scheme == "https" || (allowHTTP && u.Scheme == "http")) {
			t.Fatalf("accepted endpoint %q (allowHTTP %v)", endpoint, allowHTTP)
		}
		if kb, _ := decodeKey(p256dh); len(kb) != 65 {
			t.Fatalf("accepted p256dh %q", p256dh)
		}
		if ab, _ := decodeKey(a); len(ab) != 16 {
			t.Fatalf("accepted auth %q", a)
		}
	})
}

// TestShouldNotify is the table of who is notified: the hook the silent
// messages and mention lists of other features plug into.
func TestShouldNotify(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	mentioned := func(uid int64) bool { return uid == 7 }
	target := func(level herald.NotifyLevel, muteUntil time.Time, muted bool) herald.PushTarget {
		return herald.PushTarget{PushSubscription: herald.PushSubscription{UserID: 7}, Notify: herald.ChatNotify{Level: level, MuteUntil: muteUntil}, Muted: muted}
	}
	for _, tc := range []struct {
		name  string
		t     herald.PushTarget
		hints notifyHints
		want  bool
	}{
		{"all", target(herald.NotifyAll, time.Time{}, false), notifyHints{}, true},
		{"silent message", target(herald.NotifyAll, time.Time{}, false), notifyHints{Silent: true}, false},
		{"off, even mentioned", target(herald.NotifyOff, time.Time{}, false), notifyHints{Mentioned: mentioned}, false},
		{"mentions level, not mentioned", target(herald.NotifyMentions, time.Time{}, false), notifyHints{}, false},
		{"mentions level, mentioned", target(herald.NotifyMentions, time.Time{}, false), notifyHints{Mentioned: mentioned}, true},
		{"timed mute running", target(herald.NotifyAll, now.Add(time.Hour), false), notifyHints{}, false},
		{"timed mute running, mentioned", target(herald.NotifyAll, now.Add(time.Hour), false), notifyHints{Mentioned: mentioned}, true},
		{"timed mute over", target(herald.NotifyAll, now.Add(-time.Second), false), notifyHints{}, true},
		{"muted forever", target(herald.NotifyAll, herald.MuteForever, false), notifyHints{}, false},
		{"chats.mute switch", target(herald.NotifyAll, time.Time{}, true), notifyHints{}, false},
		{"chats.mute switch, mentioned", target(herald.NotifyAll, time.Time{}, true), notifyHints{Mentioned: mentioned}, true},
	} {
		if got := shouldNotify(tc.t, tc.hints, now); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct {
		text, user string
		want       bool
	}{
		{"@bobby hi", "bobby", true}, {"hi @Bobby!", "bobby", true}, {"@bobby_x hi", "bobby", false},
		{"mail bobby@x", "bobby", false}, {"@bob @bobby", "bobby", true}, {"", "bobby", false},
	} {
		if got := mentions(&herald.Message{Text: tc.text}, 0, tc.user); got != tc.want {
			t.Errorf("mentions(%q, %q) = %v", tc.text, tc.user, got)
		}
	}
}
