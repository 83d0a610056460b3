package service

import (
	"context"
	"encoding/binary"
	"encoding/json"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/bus"
)

// What a bus event looks like (docs/ARCHITECTURE.md, "The bus event"):
//
//	magic 0xB1 | kind (1 byte) | flags (1 byte) | device id (varint) | chat id (varint) | sealed frame
//
// The frame is the exact bytes a client receives, rendered once by the
// publisher (Frames), so a node decodes nothing per connection: it opens
// the event once and writes the same bytes to every connection that
// wants it. The frame is sealed (AES-GCM under a key of the bus's own,
// derived from the master key) with the header as additional data, so
// no plaintext travels on the bus and an event nobody with the master
// key made never reaches a client. Events an older node publishes (JSON,
// starting with '{') are still understood, and so is what this node
// publishes before the transport has set its Frames.

// EventKind names what a bus event carries.
type EventKind uint8

// Event kinds. The values are the wire's: never renumber.
const (
	EventUpdate  EventKind = 1 // Frame is an update (NewMessage: a new message)
	EventRevoked EventKind = 2 // DeviceID was logged out or revoked (0: every device): close its connections
	EventTyping  EventKind = 3 // Frame: someone is typing
	// EventFollow and EventUnfollow tell a user's connections to start or
	// stop following broadcast chat ChatID's bus topic.
	EventFollow   EventKind = 4
	EventUnfollow EventKind = 5
	// EventCallbackAnswer: Frame is a bot's answer to a button press of
	// this user.
	EventCallbackAnswer EventKind = 6
	// EventEnvelope: Frame is a secret-chat envelope (ciphertext) for
	// device DeviceID only.
	EventEnvelope EventKind = 7
	// EventFrame: Frame is a ready frame for every connection on the
	// topic, or for device DeviceID's only when it is not 0 (a call's
	// signalling, a message's reactions or pin).
	EventFrame EventKind = 8
)

// carriesFrame reports whether events of kind k have a frame.
func (k EventKind) carriesFrame() bool {
	switch k {
	case EventUpdate, EventTyping, EventCallbackAnswer, EventEnvelope, EventFrame:
		return true
	}
	return false
}

// Event is a decoded bus event.
type Event struct {
	Kind       EventKind
	DeviceID   int64  // EventRevoked, EventEnvelope
	ChatID     int64  // EventFollow, EventUnfollow
	NewMessage bool   // EventUpdate: the frame is a new message (for the delivery metrics)
	Frame      []byte // the frame to write to the connections, as it is; owned by the caller
}

// Frames renders what the service announces into the frames clients
// receive. The transport, which owns the wire format, sets it
// (SetFrames); renderings must not depend on who receives them.
type Frames interface {
	UpdateFrame(ctx context.Context, u *herald.Update) []byte
	TypingFrame(ctx context.Context, chatID, userID int64) []byte
	AnswerFrame(ctx context.Context, chatID, botID int64, a *CallbackAnswer) []byte
	EnvelopeFrame(ctx context.Context, e *herald.Envelope) []byte
	CallFrame(ctx context.Context, sig *CallSignal) []byte
	// ReactionsFrame marks the reactions reader chose (0: nobody, as in
	// a channel's anonymous counts).
	ReactionsFrame(ctx context.Context, chatID, seq int64, rs []herald.Reaction, reader int64) []byte
	PinFrame(ctx context.Context, chatID, seq int64, pinned bool) []byte
}

// SetFrames sets how events are rendered. Until it is called the service
// publishes the older JSON events, which every node still decodes.
func (s *Service) SetFrames(f Frames) {
	s.frames.Store(&f)
}

func (s *Service) framer() Frames {
	if p := s.frames.Load(); p != nil {
		return *p
	}
	return nil
}

// MaxBusEvent bounds a bus event before it is decoded: the largest the
// service publishes (a message with its extras, rendered) is far smaller,
// and NATS's own default limit is the same.
const MaxBusEvent = 1 << 20

const (
	busMagic       = 0xB1
	flagNewMessage = 1 << 0
)

// publishFrame seals and publishes one event. The update is already
// durable; a failed publish only delays it until the device's next sync,
// so it is logged, not returned.
func (s *Service) publishFrame(ctx context.Context, topic string, kind EventKind, flags byte, deviceID, chatID int64, frame []byte) {
	buf := make([]byte, 0, 3+2*binary.MaxVarintLen64+len(frame)+32)
	buf = append(buf, busMagic, byte(kind), flags)
	buf = binary.AppendVarint(buf, deviceID)
	buf = binary.AppendVarint(buf, chatID)
	data := s.sealer.SealEvent(buf, buf, frame)
	if err := s.bus.Publish(ctx, topic, data); err != nil {
		s.log.Warn("publish event", "topic", topic, "err", err)
	}
}

// DecodeEvent checks and opens a bus event. Bus bytes are network bytes:
// anything malformed, unknown, too large or not sealed by a node with
// this master key is refused with an error, never half used.
func (s *Service) DecodeEvent(ctx context.Context, data []byte) (Event, error) {
	if len(data) > MaxBusEvent {
		return Event{}, herald.Errorf(herald.TooLarge, "a bus event of %d bytes (at most %d)", len(data), MaxBusEvent)
	}
	if len(data) > 0 && data[0] == '{' {
		return s.decodeLegacy(ctx, data)
	}
	if len(data) < 3 || data[0] != busMagic {
		return Event{}, herald.Errorf(herald.Invalid, "not a bus event")
	}
	ev := Event{Kind: EventKind(data[1])}
	if ev.Kind < EventUpdate || ev.Kind > EventFrame {
		return Event{}, herald.Errorf(herald.Invalid, "a bus event of unknown kind %d", data[1])
	}
	flags := data[2]
	if flags&^flagNewMessage != 0 || (flags != 0 && ev.Kind != EventUpdate) {
		return Event{}, herald.Errorf(herald.Invalid, "a bus event with unknown flags %#x", flags)
	}
	ev.NewMessage = flags&flagNewMessage != 0
	i := 3
	var n int
	for _, p := range []*int64{&ev.DeviceID, &ev.ChatID} {
		if *p, n = binary.Varint(data[i:]); n <= 0 {
			return Event{}, herald.Errorf(herald.Invalid, "a bus event with a bad header")
		}
		i += n
	}
	frame, err := s.sealer.OpenEvent(data[:i], data[i:])
	if err != nil {
		return Event{}, herald.Errorf(herald.Invalid, "a bus event that does not open (another master key, or tampered with)")
	}
	switch {
	case ev.Kind.carriesFrame() != (len(frame) > 0):
		return Event{}, herald.Errorf(herald.Invalid, "a bus event of kind %d with a frame of %d bytes", ev.Kind, len(frame))
	case (ev.Kind == EventFollow || ev.Kind == EventUnfollow) && ev.ChatID <= 0,
		ev.Kind == EventEnvelope && ev.DeviceID <= 0,
		ev.Kind == EventRevoked && ev.DeviceID < 0,
		ev.Kind == EventFrame && ev.DeviceID < 0:
		return Event{}, herald.Errorf(herald.Invalid, "a bus event of kind %d without its ids", ev.Kind)
	}
	if len(frame) > 0 {
		ev.Frame = frame
	}
	return ev, nil
}

// announce publishes durable updates to their users' devices, each as
// the frame its devices receive. known, if not nil, is the message of
// the updates already open (a send's own message): it is not opened
// again.
func (s *Service) announce(ctx context.Context, ups []herald.Update) {
	s.announceOpen(ctx, ups, nil)
}

func (s *Service) announceOpen(ctx context.Context, ups []herald.Update, known *herald.Message) {
	ctx = context.WithoutCancel(ctx)
	f := s.framer()
	if f == nil {
		s.announceLegacy(ctx, ups)
		return
	}
	// The updates of one write share their message: open it once.
	opened := known
	for i := range ups {
		u := ups[i]
		if m := u.Message; m != nil {
			if opened == nil || opened.ChatID != m.ChatID || opened.Seq != m.Seq {
				o := *m
				if err := s.open(ctx, &o); err != nil {
					s.log.Error("open a message to announce", "chat", m.ChatID, "seq", m.Seq, "err", err)
					continue // the device gets it at its next sync
				}
				opened = &o
			}
			u.Message = opened
		}
		var flags byte
		if u.Kind == herald.UpdNewMessage {
			flags = flagNewMessage
		}
		topic := bus.UserTopic(u.UserID)
		if u.UserID == 0 {
			topic = bus.ChatTopic(u.ChatID)
		}
		s.publishFrame(ctx, topic, EventUpdate, flags, 0, 0, f.UpdateFrame(ctx, &u))
	}
}

// follow tells userID's connections to start or stop following a
// broadcast chat.
func (s *Service) follow(ctx context.Context, userID int64, ch herald.Chat, on bool) {
	if !ch.Broadcast {
		return
	}
	k := EventUnfollow
	if on {
		k = EventFollow
	}
	ctx = context.WithoutCancel(ctx)
	if s.framer() == nil {
		s.publishLegacy(ctx, bus.UserTopic(userID), legacyEvent{Kind: legacyKinds[k], ChatID: ch.ID})
		return
	}
	s.publishFrame(ctx, bus.UserTopic(userID), k, 0, 0, ch.ID, nil)
}

// emitRevoked closes userID's connections of deviceID (0: all of them).
func (s *Service) emitRevoked(ctx context.Context, userID, deviceID int64) {
	ctx = context.WithoutCancel(ctx)
	if s.framer() == nil {
		s.publishLegacy(ctx, bus.UserTopic(userID), legacyEvent{Kind: "revoked", DeviceID: deviceID})
		return
	}
	s.publishFrame(ctx, bus.UserTopic(userID), EventRevoked, 0, deviceID, 0, nil)
}

// emitTyping tells memberID's devices that userID is typing in chatID.
func (s *Service) emitTyping(ctx context.Context, memberID, chatID, userID int64) {
	ctx = context.WithoutCancel(ctx)
	f := s.framer()
	if f == nil {
		s.publishLegacy(ctx, bus.UserTopic(memberID), legacyEvent{Kind: "typing", ChatID: chatID, UserID: userID})
		return
	}
	s.publishFrame(ctx, bus.UserTopic(memberID), EventTyping, 0, 0, 0, f.TypingFrame(ctx, chatID, userID))
}

// emitAnswer sends a bot's answer to a press to the presser's devices.
func (s *Service) emitAnswer(ctx context.Context, userID, chatID, botID int64, a *CallbackAnswer) {
	ctx = context.WithoutCancel(ctx)
	f := s.framer()
	if f == nil {
		la := *a
		if a.Plain != "" {
			la.Text = s.sealer.Seal(chatID, []byte(a.Plain))
		}
		s.publishLegacy(ctx, bus.UserTopic(userID), legacyEvent{Kind: "callback_answer", ChatID: chatID, UserID: botID, Answer: &la})
		return
	}
	s.publishFrame(ctx, bus.UserTopic(userID), EventCallbackAnswer, 0, 0, 0, f.AnswerFrame(ctx, chatID, botID, a))
}

// emitEnvelope sends a secret-chat envelope to the one device it is for.
func (s *Service) emitEnvelope(ctx context.Context, e *herald.Envelope) {
	ctx = context.WithoutCancel(ctx)
	f := s.framer()
	if f == nil {
		s.publishLegacy(ctx, bus.UserTopic(e.UserID), legacyEvent{Kind: "envelope", DeviceID: e.DeviceID, Envelope: e})
		return
	}
	s.publishFrame(ctx, bus.UserTopic(e.UserID), EventEnvelope, 0, e.DeviceID, 0, f.EnvelopeFrame(ctx, e))
}

// ---- the older JSON events ----

// legacyEvent is the JSON event nodes published before the binary one.
// Message bodies inside travel sealed under the body key.
type legacyEvent struct {
	Kind     string           `json:"k"`
	Update   *herald.Update   `json:"u,omitempty"`
	DeviceID int64            `json:"d,omitempty"`
	ChatID   int64            `json:"c,omitempty"`
	UserID   int64            `json:"f,omitempty"`
	Answer   *CallbackAnswer  `json:"a,omitempty"`
	Envelope *herald.Envelope `json:"e,omitempty"`
}

var legacyKinds = map[EventKind]string{
	EventUpdate: "update", EventRevoked: "revoked", EventTyping: "typing", EventFollow: "follow",
	EventUnfollow: "unfollow", EventCallbackAnswer: "callback_answer", EventEnvelope: "envelope",
}

func (s *Service) publishLegacy(ctx context.Context, topic string, ev legacyEvent) {
	data, err := json.Marshal(ev)
	if err != nil {
		s.log.Error("encode event", "err", err)
		return
	}
	if err := s.bus.Publish(ctx, topic, data); err != nil {
		s.log.Warn("publish event", "topic", topic, "err", err)
	}
}

func (s *Service) announceLegacy(ctx context.Context, ups []herald.Update) {
	for i := range ups {
		u := ups[i]
		if u.Message != nil {
			m := *u.Message
			m.Text, m.Extras = "", herald.Extras{} // never put plaintext on the bus; Extra travels sealed
			u.Message = &m
		}
		topic := bus.UserTopic(u.UserID)
		if u.UserID == 0 {
			topic = bus.ChatTopic(u.ChatID)
		}
		s.publishLegacy(ctx, topic, legacyEvent{Kind: "update", Update: &u})
	}
}

// decodeLegacy opens a JSON event and renders its frame here, as every
// node did before the binary event.
func (s *Service) decodeLegacy(ctx context.Context, data []byte) (Event, error) {
	var le legacyEvent
	if err := json.Unmarshal(data, &le); err != nil {
		return Event{}, herald.Errorf(herald.Invalid, "a bus event that is not valid JSON")
	}
	ev := Event{DeviceID: le.DeviceID, ChatID: le.ChatID}
	for k, name := range legacyKinds {
		if name == le.Kind {
			ev.Kind = k
		}
	}
	switch {
	case ev.Kind == 0:
		return Event{}, herald.Errorf(herald.Invalid, "a bus event of unknown kind %q", truncateKind(le.Kind))
	case ev.Kind == EventUpdate && le.Update == nil,
		ev.Kind == EventCallbackAnswer && le.Answer == nil,
		ev.Kind == EventEnvelope && le.Envelope == nil:
		return Event{}, herald.Errorf(herald.Invalid, "a %q bus event without its payload", le.Kind)
	case (ev.Kind == EventFollow || ev.Kind == EventUnfollow) && ev.ChatID <= 0:
		return Event{}, herald.Errorf(herald.Invalid, "a %q bus event without its chat", le.Kind)
	}
	if !ev.Kind.carriesFrame() {
		return ev, nil
	}
	f := s.framer()
	if f == nil {
		return Event{}, herald.Errorf(herald.Unavailable, "this node renders no frames")
	}
	switch ev.Kind {
	case EventUpdate:
		if m := le.Update.Message; m != nil {
			if err := s.open(ctx, m); err != nil {
				return Event{}, err
			}
		}
		ev.NewMessage = le.Update.Kind == herald.UpdNewMessage
		ev.Frame = f.UpdateFrame(ctx, le.Update)
	case EventTyping:
		ev.Frame = f.TypingFrame(ctx, le.ChatID, le.UserID)
	case EventCallbackAnswer:
		s.openAnswer(le.ChatID, le.Answer)
		ev.Frame = f.AnswerFrame(ctx, le.ChatID, le.UserID, le.Answer)
	case EventEnvelope:
		ev.Frame = f.EnvelopeFrame(ctx, le.Envelope)
	}
	return ev, nil
}

func truncateKind(k string) string {
	if len(k) > 32 {
		return k[:32]
	}
	return k
}

// emitFrame sends a frame that is not stored to userID's devices (only
// deviceID's when it is not 0). Without a renderer (a service with no
// transport) there is nobody to send it to.
func (s *Service) emitFrame(ctx context.Context, userID, deviceID int64, render func(Frames) []byte) {
	if f := s.framer(); f != nil {
		s.publishFrame(context.WithoutCancel(ctx), bus.UserTopic(userID), EventFrame, 0, deviceID, 0, render(f))
	}
}

// emitCall sends a call's signal to userID's devices (sig.ToDevice's only
// when it is not 0).
func (s *Service) emitCall(ctx context.Context, userID int64, sig *CallSignal) {
	s.emitFrame(ctx, userID, sig.ToDevice, func(f Frames) []byte { return f.CallFrame(ctx, sig) })
}

// tell pushes a frame that is not stored to every member of a chat: on
// the chat's topic for broadcast chats (rendered for no one in
// particular), else to each member, rendered for them. A device that
// missed it sees the change when it next loads the history.
func (s *Service) tell(ctx context.Context, ch herald.Chat, render func(f Frames, reader int64) []byte) {
	f := s.framer()
	if f == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if ch.Broadcast {
		s.publishFrame(ctx, bus.ChatTopic(ch.ID), EventFrame, 0, 0, 0, render(f, 0))
		return
	}
	members, err := s.store.Members(ctx, ch.ID)
	if err != nil {
		s.log.Warn("members of a chat to tell", "chat", ch.ID, "err", err)
		return
	}
	for _, m := range members {
		s.publishFrame(ctx, bus.UserTopic(m.UserID), EventFrame, 0, 0, 0, render(f, m.UserID))
	}
}
