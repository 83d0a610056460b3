// Package bus defines how a Herald node tells connections — its own and
// other nodes' — that something happened. The in-process implementation is
// bus/memory; every implementation passes bus/bustest.
//
// The bus is a notification path, not the record: updates are durable in
// the store before they are published, and a device that misses a bus
// message catches up from the store by its pts. So a bus may drop messages
// when a subscriber cannot keep up, but must never reorder the messages
// published to one topic by one publisher, and never corrupt them.
package bus

import "context"

// Bus publishes byte messages to named topics.
type Bus interface {
	// Publish sends data to every current subscriber of topic. It does not
	// wait for subscribers to handle it. Unavailable if the bus is closed
	// or unreachable.
	Publish(ctx context.Context, topic string, data []byte) error
	// Subscribe calls fn for every message published to topic from now on,
	// one at a time and in publication order. fn must not block: hand the
	// data to a queue and return. data must not be kept after fn returns
	// unless copied.
	Subscribe(topic string, fn func(data []byte)) (Subscription, error)
	// Close stops delivery to every subscription.
	Close() error
}

// Subscription is an active subscription.
type Subscription interface {
	// Unsubscribe stops delivery; fn is not called after it returns.
	Unsubscribe() error
}

// UserTopic is the topic that carries a user's events to their devices.
func UserTopic(userID int64) string {
	return "u." + itoa(userID)
}

// ChatTopic is the topic that carries a broadcast chat's posts to every
// node with a subscriber online: one message per post per node, however
// many subscribers it has.
func ChatTopic(chatID int64) string {
	return "c." + itoa(chatID)
}

// BotPollTopic carries notices of a bot's long polls starting, so that a
// newer getUpdates on one node ends an older one waiting on another.
func BotPollTopic(botID int64) string {
	return "bp." + itoa(botID)
}

// ChatChangedTopic carries the ids of chats whose settings changed
// (varint), so that every node drops its cached copy.
const ChatChangedTopic = "chatchanged"

// CatchUpTopic carries node-wide catch-up notices: each node publishes its
// id and how many times its bus connection was interrupted (its epoch),
// every few seconds and at once after a reconnect. Events it published
// around an interruption may not have reached the other nodes, so a node
// that sees another's epoch grow tells all its connections to catch up
// from the store (see transport.Server.BusLost).
const CatchUpTopic = "catchup"

func itoa(v int64) string {
	var b [20]byte
	i := len(b)
	neg := v < 0
	if neg {
		v = -v
	}
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
