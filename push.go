package herald

import "time"

// Push limits.
const (
	// MaxPushSubscriptions caps one account's push subscriptions (over
	// all its devices).
	MaxPushSubscriptions = 20
	// MaxPushEndpoint bounds an endpoint URL's length.
	MaxPushEndpoint = 1024
)

// PushSubscription is where a device receives Web Push / UnifiedPush
// messages (RFC 8030): the push service's endpoint and the device's
// public keys for payload encryption (RFC 8291), base64url as the Push
// API gives them.
type PushSubscription struct {
	Endpoint  string
	DeviceID  int64
	UserID    int64
	P256dh    string
	Auth      string
	CreatedAt time.Time
}

// NotifyLevel says which messages of a chat notify a user.
type NotifyLevel int

// Notification levels; the numbers are stored.
const (
	NotifyAll      NotifyLevel = 0
	NotifyMentions NotifyLevel = 1 // only mentions of the user and replies to them
	NotifyOff      NotifyLevel = 2
)

// PushPrefs are what a user lets notifications show. The zero value is
// the default: text and sender shown (as Telegram does for cloud chats).
type PushPrefs struct {
	HideText   bool
	HideSender bool
}

// ChatNotify is a user's notification setting for one chat.
type ChatNotify struct {
	Level     NotifyLevel
	MuteUntil time.Time // zero: not muted; MuteForever: muted for good
}

// PushTarget is one subscription that may be notified of a message in a
// chat, with what decides whether and how.
type PushTarget struct {
	PushSubscription
	Prefs  PushPrefs
	Notify ChatNotify
	Muted  bool // the chat's older mute switch (chats.mute): like NotifyOff
}

// MuteForever is the end of a mute that does not end.
var MuteForever = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
