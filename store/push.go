package store

import (
	"context"
	"time"

	"github.com/heraldim/herald"
)

// Push is what push notifications need from the store: devices' push
// subscriptions, users' and chats' notification settings, and the
// server's VAPID key. Both stores implement it.
type Push interface {
	// AddPushSubscription stores (or replaces, by endpoint) a device's
	// subscription; RateLimited if the account already has max others.
	AddPushSubscription(ctx context.Context, sub herald.PushSubscription, max int) error
	// PushSubscriptions lists userID's subscriptions, oldest first.
	PushSubscriptions(ctx context.Context, userID int64) ([]herald.PushSubscription, error)
	// DeletePushSubscription deletes userID's subscription at endpoint;
	// NotFound if there is none.
	DeletePushSubscription(ctx context.Context, userID int64, endpoint string) error
	// DropPushEndpoint deletes the subscription at endpoint, whoever owns
	// it (the push service answered 404 or 410); none is no error.
	DropPushEndpoint(ctx context.Context, endpoint string) error
	// SetPushFocus records until when a device has a focused live
	// connection, which a push would only duplicate.
	SetPushFocus(ctx context.Context, deviceID int64, until time.Time) error
	// PushTargets lists the subscriptions of chatID's members other than
	// exceptUser whose device is not focused at now, with each member's
	// settings.
	PushTargets(ctx context.Context, chatID, exceptUser int64, now time.Time) ([]herald.PushTarget, error)
	// UserPushTargets is PushTargets for one user's devices (secret-chat
	// wake-ups), except exceptDevice.
	UserPushTargets(ctx context.Context, userID, exceptDevice int64) ([]herald.PushSubscription, error)
	// PushPrefs returns userID's privacy switches (defaults if never set).
	PushPrefs(ctx context.Context, userID int64) (herald.PushPrefs, error)
	// SetPushPrefs sets them.
	SetPushPrefs(ctx context.Context, userID int64, p herald.PushPrefs) error
	// ChatNotify returns userID's setting for chatID.
	ChatNotify(ctx context.Context, userID, chatID int64) (herald.ChatNotify, error)
	// SetChatNotify sets it; NotFound if userID is not a member.
	SetChatNotify(ctx context.Context, userID, chatID int64, n herald.ChatNotify) error
	// VAPIDKey returns the stored VAPID key pair, storing private and
	// public first if there is none: the first node's pair wins, so all
	// nodes sign alike.
	VAPIDKey(ctx context.Context, private, public []byte) (storedPrivate, storedPublic []byte, err error)
}
