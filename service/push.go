package service

import (
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/push"
	"github.com/heraldim/herald/store"
)

// Pusher sends push messages (push.Dispatcher).
type Pusher interface {
	Enqueue(push.Job)
}

// PushConfig turns push notifications on (EnablePush).
type PushConfig struct {
	Store  store.Push
	Pusher Pusher
	// Public is the VAPID public key clients subscribe with
	// (applicationServerKey).
	Public string
	// CheckEndpoint judges an endpoint URL before it is stored: the
	// egress policy's CheckURL (the dialer checks again at each push).
	CheckEndpoint func(ctx context.Context, raw string) error
	// AllowHTTP lets endpoints be plain http:// (tests, a distributor on
	// the operator's own network); otherwise https:// only.
	AllowHTTP bool
}

// pushState is the service's push side; nil until EnablePush.
type pushState struct {
	PushConfig
	work      chan func() // bounded: a burst of messages never waits for lookups
	quit      chan struct{}
	done      chan struct{}
	subscribe *keyed // push.subscribe calls per device
	focus     *keyed // push.focus calls per device
}

// Payload limits: the text in a notification is a preview; webpush-go
// pads every record to 4 KiB, so the payload's length tells nothing.
const (
	pushPreviewRunes = 200
	pushTTL          = 24 * time.Hour
	pushFocusFor     = 2 * time.Minute // a focused device renews its focus within this
	pushWorkQueue    = 4096
)

// EnablePush turns push notifications on. Call it once, before serving.
func (s *Service) EnablePush(cfg PushConfig) {
	var b buckets = newMemBuckets(s.now)
	if shared, ok := s.store.(store.Rates); ok {
		b = shared
	}
	p := &pushState{PushConfig: cfg, work: make(chan func(), pushWorkQueue), quit: make(chan struct{}), done: make(chan struct{}),
		subscribe: newKeyed(b, "push-subscribe", 1.0/6, herald.MaxPushSubscriptions+10, "push subscription changes"),
		focus:     newKeyed(b, "push-focus", 1, 30, "focus changes")}
	s.push = p
	// Lookups for pushes run off the request path, in order.
	go func() {
		defer close(p.done)
		for {
			select {
			case fn := <-p.work:
				fn()
			case <-p.quit:
				return
			}
		}
	}()
}

// StopPush stops preparing pushes (what is waiting is dropped), before
// the store closes.
func (s *Service) StopPush() {
	if s.push == nil {
		return
	}
	select {
	case <-s.push.quit:
	default:
		close(s.push.quit)
	}
	<-s.push.done
}

// PushEnabled reports whether the server sends push notifications.
func (s *Service) PushEnabled() bool { return s.push != nil }

// VAPIDPublicKey is the key a client subscribes with; empty without push.
func (s *Service) VAPIDPublicKey() string {
	if s.push == nil {
		return ""
	}
	return s.push.Public
}

func (s *Service) pushStore() (*pushState, error) {
	if s.push == nil {
		return nil, herald.Errorf(herald.Unavailable, "this server does not send push notifications")
	}
	return s.push, nil
}

// later runs fn on the push worker, or drops it if the worker is that far
// behind: a push is a hint, the message itself is already delivered.
func (s *Service) later(fn func()) {
	select {
	case <-s.push.quit:
		return
	default:
	}
	select {
	case s.push.work <- fn:
	default:
		s.log.Warn("push: work queue full; a notification was dropped")
	}
}

// PushSubscribe registers the caller's device for push at endpoint, with
// the device's P-256 public key and auth secret (base64url, as the Push
// API gives them).
func (s *Service) PushSubscribe(ctx context.Context, c Caller, endpoint, p256dh, auth string) error {
	p, err := s.pushStore()
	if err != nil {
		return err
	}
	if c.DeviceID == 0 {
		return herald.Errorf(herald.PermissionDenied, "only a device can subscribe to push")
	}
	if err := p.subscribe.take(ctx, fmt.Sprint(c.DeviceID)); err != nil {
		return err
	}
	if err := checkSubscription(endpoint, p256dh, auth, p.AllowHTTP); err != nil {
		return err
	}
	if p.CheckEndpoint != nil {
		if err := p.CheckEndpoint(ctx, endpoint); err != nil {
			return herald.Errorf(herald.Invalid, "push endpoint refused: %v", err)
		}
	}
	return p.Store.AddPushSubscription(ctx, herald.PushSubscription{
		Endpoint: endpoint, DeviceID: c.DeviceID, UserID: c.UserID, P256dh: p256dh, Auth: auth, CreatedAt: s.now(),
	}, herald.MaxPushSubscriptions)
}

// checkSubscription judges a subscription as it came from the client,
// before anything is looked up or resolved: an http(s) URL of bounded
// length (https only unless allowHTTP), a P-256 point and a 16-byte
// secret. Its errors are INVALID_ARGUMENT or TOO_LARGE.
func checkSubscription(endpoint, p256dh, auth string, allowHTTP bool) error {
	if len(endpoint) > herald.MaxPushEndpoint {
		return herald.Errorf(herald.TooLarge, "a push endpoint is at most %d bytes", herald.MaxPushEndpoint)
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return herald.Errorf(herald.Invalid, "a push endpoint is an https:// URL")
	}
	if u.Scheme == "http" && !allowHTTP {
		return herald.Errorf(herald.Invalid, "a push endpoint must be https:// on this server")
	}
	if u.User != nil {
		return herald.Errorf(herald.Invalid, "a push endpoint must not carry a user name or password")
	}
	if len(p256dh) > 128 || len(auth) > 64 {
		return herald.Errorf(herald.Invalid, "p256dh and auth are short base64url keys")
	}
	if k, err := decodeKey(p256dh); err != nil || len(k) != 65 {
		return herald.Errorf(herald.Invalid, "p256dh is the subscription's P-256 public key, 65 bytes in base64url")
	} else if _, err := ecdh.P256().NewPublicKey(k); err != nil {
		return herald.Errorf(herald.Invalid, "p256dh is not a point on P-256")
	}
	if k, err := decodeKey(auth); err != nil || len(k) != 16 {
		return herald.Errorf(herald.Invalid, "auth is the subscription's 16-byte secret in base64url")
	}
	return nil
}

// decodeKey reads base64url with or without padding (browsers give it
// without; some libraries with).
func decodeKey(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// PushSubscriptions lists the caller's subscriptions, every device's.
func (s *Service) PushSubscriptions(ctx context.Context, c Caller) ([]herald.PushSubscription, error) {
	p, err := s.pushStore()
	if err != nil {
		return nil, err
	}
	return p.Store.PushSubscriptions(ctx, c.UserID)
}

// PushUnsubscribe deletes one of the caller's subscriptions.
func (s *Service) PushUnsubscribe(ctx context.Context, c Caller, endpoint string) error {
	p, err := s.pushStore()
	if err != nil {
		return err
	}
	if err := p.subscribe.take(ctx, fmt.Sprint(c.DeviceID)); err != nil {
		return err
	}
	return p.Store.DeletePushSubscription(ctx, c.UserID, endpoint)
}

// PushFocus says whether the caller's device has a focused window on a
// live connection: while it does (renewed within pushFocusFor), pushes
// would only repeat what it shows, so none are sent to it.
func (s *Service) PushFocus(ctx context.Context, c Caller, focused bool) error {
	p, err := s.pushStore()
	if err != nil {
		return err
	}
	if err := p.focus.take(ctx, fmt.Sprint(c.DeviceID)); err != nil {
		return err
	}
	var until time.Time
	if focused {
		until = s.now().Add(pushFocusFor)
	}
	return p.Store.SetPushFocus(ctx, c.DeviceID, until)
}

// PushPrefs returns the caller's privacy switches.
func (s *Service) PushPrefs(ctx context.Context, c Caller) (herald.PushPrefs, error) {
	p, err := s.pushStore()
	if err != nil {
		return herald.PushPrefs{}, err
	}
	return p.Store.PushPrefs(ctx, c.UserID)
}

// SetPushPrefs sets them.
func (s *Service) SetPushPrefs(ctx context.Context, c Caller, prefs herald.PushPrefs) error {
	p, err := s.pushStore()
	if err != nil {
		return err
	}
	return p.Store.SetPushPrefs(ctx, c.UserID, prefs)
}

// ChatNotify returns the caller's notification setting for a chat.
func (s *Service) ChatNotify(ctx context.Context, c Caller, chatID int64) (herald.ChatNotify, error) {
	p, err := s.pushStore()
	if err != nil {
		return herald.ChatNotify{}, err
	}
	if _, _, err := s.membership(ctx, c, chatID); err != nil {
		return herald.ChatNotify{}, err
	}
	return p.Store.ChatNotify(ctx, c.UserID, chatID)
}

// SetChatNotify sets the caller's level for a chat and, with a non-zero
// muteFor, mutes it that long (negative: for good).
func (s *Service) SetChatNotify(ctx context.Context, c Caller, chatID int64, level herald.NotifyLevel, muteFor time.Duration) (herald.ChatNotify, error) {
	p, err := s.pushStore()
	if err != nil {
		return herald.ChatNotify{}, err
	}
	if level < herald.NotifyAll || level > herald.NotifyOff {
		return herald.ChatNotify{}, herald.Errorf(herald.Invalid, "level is all, mentions or off")
	}
	if _, _, err := s.membership(ctx, c, chatID); err != nil {
		return herald.ChatNotify{}, err
	}
	n := herald.ChatNotify{Level: level}
	switch {
	case muteFor < 0:
		n.MuteUntil = herald.MuteForever
	case muteFor > 366*24*time.Hour:
		return n, herald.Errorf(herald.Invalid, "a timed mute lasts at most a year; use forever")
	case muteFor > 0:
		n.MuteUntil = s.now().Add(muteFor)
	}
	return n, p.Store.SetChatNotify(ctx, c.UserID, chatID, n)
}

// Payload is what a push message carries, as JSON, encrypted to the
// device (docs/NOTIFICATIONS.md).
type Payload struct {
	V      int     `json:"v"`
	Kind   string  `json:"kind"` // message, withdraw, wake
	ChatID int64   `json:"chat_id,omitempty"`
	Seq    int64   `json:"seq,omitempty"`
	Seqs   []int64 `json:"seqs,omitempty"`
	Chat   string  `json:"chat_kind,omitempty"`
	Title  string  `json:"title,omitempty"`
	Sender string  `json:"sender,omitempty"`
	Body   string  `json:"body,omitempty"`
	Secret bool    `json:"secret,omitempty"`
	At     int64   `json:"at,omitempty"` // Unix milliseconds
}

// notifyHints is what, beyond the chat's settings, decides whether a
// message notifies a member. It is the hook for features that change
// that: a silent message notifies nobody; mentions (and replies) notify
// a member even in a muted chat or at the "mentions" level.
type notifyHints struct {
	Silent    bool
	Mentioned func(userID int64) bool
}

// shouldNotify decides for one subscription. Off means nothing; a mute
// (timed or the older chats.mute switch) and the "mentions" level let
// only mentions and replies through, as Telegram does for groups.
func shouldNotify(t herald.PushTarget, h notifyHints, now time.Time) bool {
	if h.Silent || t.Notify.Level == herald.NotifyOff {
		return false
	}
	muted := t.Muted || now.Before(t.Notify.MuteUntil)
	if muted || t.Notify.Level == herald.NotifyMentions {
		return h.Mentioned != nil && h.Mentioned(t.UserID)
	}
	return true
}

// missedCall reports whether a service message records a call its callee
// did not take: it notifies them, as Telegram's missed calls do.
func missedCall(m herald.Message) bool {
	c := m.Extras.Call
	return c != nil && (c.Outcome == herald.CallOutcomeMissed || c.Outcome == herald.CallOutcomeBusy)
}

// notifyMessage sends the pushes for a new message, after its commit: on
// the node where it was committed, so each is sent once.
func (s *Service) notifyMessage(m herald.Message, text string) {
	if s.push == nil || (m.Service && !missedCall(m)) {
		return
	}
	committed := time.Now()
	s.later(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.sendMessagePushes(ctx, m, text, committed); err != nil {
			s.log.Warn("push: message notifications", "chat", m.ChatID, "err", err)
		}
	})
}

func (s *Service) sendMessagePushes(ctx context.Context, m herald.Message, text string, committed time.Time) error {
	now := s.now()
	targets, err := s.push.Store.PushTargets(ctx, m.ChatID, m.SenderID, now)
	if err != nil || len(targets) == 0 {
		return err
	}
	ch, err := s.chatMeta(ctx, m.ChatID)
	if err != nil {
		return err
	}
	sender, err := s.user(ctx, m.SenderID)
	if err != nil {
		return err
	}
	var repliedTo int64
	if m.ReplyTo > 0 {
		if r, err := s.store.Message(ctx, m.SenderID, m.ChatID, m.ReplyTo); err == nil {
			repliedTo = r.SenderID
		}
	}
	var hints notifyHints
	if ch.Kind == herald.Group {
		// Only in groups does a mention or a reply get through a mute,
		// as on Telegram; a muted direct chat or channel stays quiet.
		hints.Mentioned = func(userID int64) bool {
			if userID == repliedTo {
				return true
			}
			u, err := s.user(ctx, userID)
			probe := m
			probe.Text = text
			return err == nil && mentions(&probe, userID, u.Username)
		}
	}
	for _, t := range targets {
		if !shouldNotify(t, hints, now) {
			continue
		}
		pl := Payload{V: 1, Kind: "message", ChatID: m.ChatID, Seq: m.Seq, Chat: ch.Kind.String(), At: m.SentAt.UnixMilli()}
		senderName := sender.DisplayName
		if senderName == "" {
			senderName = sender.Username
		}
		switch {
		case ch.Kind == herald.Direct && t.Prefs.HideSender:
			pl.Title = "Herald"
		case ch.Kind == herald.Direct:
			pl.Title = senderName
		default:
			pl.Title = ch.Title
			// A channel post names its author only if it is signed.
			if !t.Prefs.HideSender && (ch.Kind != herald.Channel || m.Signed) {
				pl.Sender = senderName
			}
		}
		if t.Prefs.HideText {
			pl.Body = "New message"
		} else {
			pl.Body = preview(text, m.File != nil)
		}
		urgency := "normal"
		if ch.Kind == herald.Direct {
			urgency = "high"
		}
		s.sendPush(t.PushSubscription, pl, topic(m.ChatID, m.Seq), urgency, committed)
	}
	return nil
}

func (s *Service) sendPush(sub herald.PushSubscription, pl Payload, topic, urgency string, committed time.Time) {
	b, err := json.Marshal(pl)
	if err != nil {
		return
	}
	s.push.Pusher.Enqueue(push.Job{Endpoint: sub.Endpoint, P256dh: sub.P256dh, Auth: sub.Auth, Payload: b,
		Topic: topic, Urgency: urgency, TTL: pushTTL, Committed: committed})
}

// topic names a message for the push service, so that a withdrawal
// replaces the notification if it has not been delivered yet.
func topic(chatID, seq int64) string { return fmt.Sprintf("m%dx%d", chatID, seq) }

// preview is a notification's text: the start of the message.
func preview(text string, file bool) string {
	if text == "" && file {
		return "File"
	}
	if utf8.RuneCountInString(text) <= pushPreviewRunes {
		return text
	}
	r := []rune(text)
	return string(r[:pushPreviewRunes]) + "…"
}

// notifyWithdraw tells the devices of a chat's members to take down the
// notifications of messages that were deleted for everyone or expired.
func (s *Service) notifyWithdraw(chatID int64, seqs []int64, actor int64) {
	if s.push == nil || len(seqs) == 0 {
		return
	}
	seqs = append([]int64(nil), seqs...)
	committed := time.Now()
	s.later(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		now := s.now()
		targets, err := s.push.Store.PushTargets(ctx, chatID, actor, now)
		if err != nil {
			s.log.Warn("push: withdrawal", "chat", chatID, "err", err)
			return
		}
		t := ""
		if len(seqs) == 1 {
			t = topic(chatID, seqs[0])
		}
		for _, tg := range targets {
			if tg.Notify.Level == herald.NotifyOff {
				continue
			}
			s.sendPush(tg.PushSubscription, Payload{V: 1, Kind: "withdraw", ChatID: chatID, Seqs: seqs}, t, "normal", committed)
		}
	})
}

// notifyExpired withdraws the notifications of messages whose timer
// ended, from the sweep's updates.
func (s *Service) notifyExpired(ups []herald.Update) {
	if s.push == nil {
		return
	}
	byChat := map[int64]map[int64]bool{}
	for _, u := range ups {
		if u.Kind != herald.UpdDelete {
			continue
		}
		if byChat[u.ChatID] == nil {
			byChat[u.ChatID] = map[int64]bool{}
		}
		for _, q := range u.Seqs {
			byChat[u.ChatID][q] = true
		}
	}
	for chatID, set := range byChat {
		var seqs []int64
		for q := range set {
			seqs = append(seqs, q)
		}
		s.notifyWithdraw(chatID, seqs, 0)
	}
}

// notifySecret wakes the devices that were sent secret envelopes. The
// push says only that something arrived: the device fetches and decrypts
// the envelope and builds its notification itself.
func (s *Service) notifySecret(envs []herald.Envelope) {
	if s.push == nil || len(envs) == 0 {
		return
	}
	devices := map[int64]int64{} // device → user
	for _, e := range envs {
		devices[e.DeviceID] = e.UserID
	}
	committed := time.Now()
	s.later(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		users := map[int64]bool{}
		for _, u := range devices {
			users[u] = true
		}
		for u := range users {
			subs, err := s.push.Store.PushSubscriptions(ctx, u)
			if err != nil {
				s.log.Warn("push: secret wake-up", "err", err)
				return
			}
			for _, sub := range subs {
				if _, ok := devices[sub.DeviceID]; ok {
					// One topic: wake-ups not yet delivered collapse into one.
					s.sendPush(sub, Payload{V: 1, Kind: "wake", Secret: true}, "wake", "high", committed)
				}
			}
		}
	})
}
