package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/heraldim/herald"
)

// Call signal kinds, as devices receive them.
const (
	CallIncoming = "incoming" // to the callee's devices: ring, with the caller's offer
	CallAnswer   = "answer"   // to the calling device: the answer's SDP
	CallAccepted = "accepted" // to the callee's devices: one of them answered (FromDevice), the others stop ringing
	CallICE      = "ice"      // an ICE candidate for the other side
	CallEnded    = "ended"    // to every device of both: the call is over (Outcome, DurationMS)
)

// CallSignal is a call's signalling, pushed to devices and never stored.
// ToDevice 0 means every device of the user it is published to.
type CallSignal struct {
	CallID     string
	ChatID     int64
	Kind       string
	FromUserID int64
	FromDevice int64
	ToDevice   int64
	Video      bool
	SDP        string
	Candidate  string
	Outcome    string
	DurationMS int64
}

// callLimits counts each device's ICE candidates per call on this node.
type callLimits struct {
	mu         sync.Mutex
	candidates map[string]map[int64]int
}

// StartCall places a 1:1 call in a direct chat, ringing every device of
// the other person with the caller's offer (a WebRTC SDP). It fails with
// BUSY if they are in another call (and the chat records the attempt),
// PERMISSION_DENIED if they blocked the caller.
func (s *Service) StartCall(ctx context.Context, c Caller, p Peer, video bool, offer string) (herald.Call, error) {
	if c.Bot || c.DeviceID == 0 {
		return herald.Call{}, herald.Errorf(herald.PermissionDenied, "bots cannot place calls")
	}
	if err := validSDP(offer); err != nil {
		return herald.Call{}, err
	}
	if p.Username != "" {
		// Before the chat is found or made: a block refuses the call
		// as a call, not as a message.
		if u, err := s.ResolveUser(ctx, p.Username); err == nil {
			if err := s.blockedBy(ctx, u.ID, c.UserID, "calls"); err != nil {
				return herald.Call{}, err
			}
		}
	}
	ch, _, paid, err := s.resolveToWrite(ctx, c, p, 1)
	if err != nil {
		return herald.Call{}, err
	}
	if ch.Kind != herald.Direct {
		return herald.Call{}, herald.Errorf(herald.Invalid, "calls are placed in direct chats; group calls are not available yet")
	}
	// A call is paid like a message: it rings devices and ends in a
	// service message.
	if !paid {
		if err := s.spend(ctx, c, ch, 1); err != nil {
			return herald.Call{}, err
		}
	}
	peer, err := s.otherMember(ctx, ch, c.UserID)
	if err != nil {
		return herald.Call{}, err
	}
	if u, err := s.user(ctx, peer); err != nil {
		return herald.Call{}, err
	} else if u.IsBot {
		return herald.Call{}, herald.Errorf(herald.PermissionDenied, "bots cannot take calls")
	}
	if err := s.blockedBy(ctx, peer, c.UserID, "calls"); err != nil {
		return herald.Call{}, err
	}
	call := herald.Call{ID: newCallID(), ChatID: ch.ID, CallerID: c.UserID, CalleeID: peer, CallerDevice: c.DeviceID,
		Video: video, State: herald.CallRinging, StartedAt: s.now()}
	busy, err := s.store.CreateCall(ctx, call)
	if herald.IsKind(err, herald.AlreadyExists) {
		if busy == c.UserID {
			return herald.Call{}, herald.Errorf(herald.Busy, "you are already in a call")
		}
		call.State, call.Outcome, call.EndedAt = herald.CallEnded, herald.CallOutcomeBusy, call.StartedAt
		s.recordCall(ctx, call)
		name := s.UserNames(ctx, peer)[peer]
		return herald.Call{}, herald.Errorf(herald.Busy, "@%s is in another call", name)
	}
	if err != nil {
		return herald.Call{}, err
	}
	s.emitCall(ctx, peer, &CallSignal{CallID: call.ID, ChatID: ch.ID, Kind: CallIncoming,
		FromUserID: c.UserID, FromDevice: c.DeviceID, Video: video, SDP: offer})
	id := call.ID
	time.AfterFunc(s.callRing, func() {
		// Unanswered: missed. If it was answered, the state no longer
		// matches and nothing happens.
		s.endCall(context.Background(), id, herald.CallRinging, herald.CallOutcomeMissed)
	})
	return call, nil
}

// AnswerCall answers a ringing call on the caller's device with a WebRTC
// answer. Only the callee may answer, on one device: a second device's
// answer gets NOT_FOUND ("the call was answered on another device").
func (s *Service) AnswerCall(ctx context.Context, c Caller, callID, answer string) (herald.Call, error) {
	if err := validSDP(answer); err != nil {
		return herald.Call{}, err
	}
	call, err := s.callOf(ctx, c, callID)
	if err != nil {
		return call, err
	}
	if call.CalleeID != c.UserID {
		return call, herald.Errorf(herald.PermissionDenied, "only the person called can answer")
	}
	if call.State != herald.CallRinging || !call.Busy(s.now()) {
		return call, herald.Errorf(herald.NotFound, "the call is no longer ringing")
	}
	up := call
	up.State, up.CalleeDevice, up.AcceptedAt = herald.CallActive, c.DeviceID, s.now()
	ok, err := s.store.UpdateCall(ctx, up, herald.CallRinging)
	if err != nil {
		return call, err
	}
	if !ok {
		return call, herald.Errorf(herald.NotFound, "the call is no longer ringing (answered on another device, or ended)")
	}
	bg := context.WithoutCancel(ctx)
	s.emitCall(bg, call.CallerID, &CallSignal{CallID: call.ID, ChatID: call.ChatID, Kind: CallAnswer,
		FromUserID: c.UserID, FromDevice: c.DeviceID, ToDevice: call.CallerDevice, Video: call.Video, SDP: answer})
	s.emitCall(bg, call.CalleeID, &CallSignal{CallID: call.ID, ChatID: call.ChatID, Kind: CallAccepted,
		FromUserID: c.UserID, FromDevice: c.DeviceID})
	return up, nil
}

// DeclineCall turns a ringing call down; only the callee may.
func (s *Service) DeclineCall(ctx context.Context, c Caller, callID string) error {
	call, err := s.callOf(ctx, c, callID)
	if err != nil {
		return err
	}
	if call.CalleeID != c.UserID {
		return herald.Errorf(herald.PermissionDenied, "only the person called can decline; the caller hangs up")
	}
	if ok, err := s.endCall(ctx, callID, herald.CallRinging, herald.CallOutcomeDeclined); err != nil || !ok {
		if err == nil {
			err = herald.Errorf(herald.NotFound, "the call is no longer ringing")
		}
		return err
	}
	return nil
}

// HangUp ends a call from either side: while it rings (the caller gives
// up: missed) or once it is active. Hanging up a call that has already
// ended is not an error: both sides may hang up at once.
func (s *Service) HangUp(ctx context.Context, c Caller, callID string) error {
	call, err := s.callOf(ctx, c, callID)
	if err != nil {
		return err
	}
	switch call.State {
	case herald.CallRinging:
		if call.CalleeID == c.UserID {
			return s.DeclineCall(ctx, c, callID)
		}
		if ok, err := s.endCall(ctx, callID, herald.CallRinging, herald.CallOutcomeMissed); err != nil || ok {
			return err
		}
	case herald.CallActive:
		if (call.CallerID == c.UserID && call.CallerDevice != c.DeviceID) || (call.CalleeID == c.UserID && call.CalleeDevice != c.DeviceID) {
			return herald.Errorf(herald.PermissionDenied, "the call is on another of your devices")
		}
		if ok, err := s.endCall(ctx, callID, herald.CallActive, herald.CallOutcomeEnded); err != nil || ok {
			return err
		}
	}
	return nil // already ended
}

// CallCandidate relays one ICE candidate to the other side of a call.
func (s *Service) CallCandidate(ctx context.Context, c Caller, callID, candidate string) error {
	if len(candidate) > herald.MaxCallCandidate {
		return herald.Errorf(herald.TooLarge, "an ICE candidate is at most %d bytes", herald.MaxCallCandidate)
	}
	if !validText(candidate) {
		return herald.Errorf(herald.Invalid, "an ICE candidate is text")
	}
	call, err := s.callOf(ctx, c, callID)
	if err != nil {
		return err
	}
	if !call.Busy(s.now()) {
		return herald.Errorf(herald.NotFound, "the call has ended")
	}
	sig := &CallSignal{CallID: call.ID, ChatID: call.ChatID, Kind: CallICE, FromUserID: c.UserID, FromDevice: c.DeviceID, Candidate: candidate}
	var to int64
	switch {
	case call.CallerID == c.UserID && call.CallerDevice == c.DeviceID:
		to, sig.ToDevice = call.CalleeID, call.CalleeDevice // 0 while ringing: every device keeps them for its answer
	case call.CalleeID == c.UserID && call.CalleeDevice == c.DeviceID && call.State == herald.CallActive:
		to, sig.ToDevice = call.CallerID, call.CallerDevice
	default:
		return herald.Errorf(herald.PermissionDenied, "this device is not in the call")
	}
	if !s.calls.count(call.ID, c.DeviceID) {
		return herald.Errorf(herald.RateLimited, "a device sends at most %d ICE candidates in a call", herald.MaxCallCandidates)
	}
	s.emitCall(ctx, to, sig)
	return nil
}

// ICEServer is a STUN or TURN server a device's WebRTC uses for calls.
type ICEServer struct {
	URLs       []string
	Username   string
	Credential string
}

// ICEServers returns the relays the caller's device may use for calls,
// with credentials that outlast the longest call; none when the node runs
// no relay (devices then connect directly).
func (s *Service) ICEServers(ctx context.Context, c Caller) ([]ICEServer, error) {
	if c.Bot || c.DeviceID == 0 {
		return nil, herald.Errorf(herald.PermissionDenied, "bots cannot place calls")
	}
	if s.ice == nil {
		return nil, nil
	}
	out, err := s.ice(c.UserID, herald.CallMaxLength+herald.CallRingTimeout)
	return out, herald.Wrap("service.ICEServers", err)
}

// callOf returns a call the caller is in; NOT_FOUND for anyone else, so
// a call id tells a stranger nothing.
func (s *Service) callOf(ctx context.Context, c Caller, callID string) (herald.Call, error) {
	if len(callID) != 32 {
		return herald.Call{}, herald.Errorf(herald.NotFound, "no such call")
	}
	call, err := s.store.Call(ctx, callID)
	if err != nil {
		return call, err
	}
	if call.CallerID != c.UserID && call.CalleeID != c.UserID {
		return herald.Call{}, herald.Errorf(herald.NotFound, "no such call")
	}
	return call, nil
}

// endCall moves a call from state from to ended with outcome, tells every
// device of both people and records the call in the chat. It reports
// whether this was the transition that ended it.
func (s *Service) endCall(ctx context.Context, callID string, from herald.CallState, outcome string) (bool, error) {
	call, err := s.store.Call(ctx, callID)
	if err != nil {
		return false, err
	}
	up := call
	up.State, up.Outcome, up.EndedAt = herald.CallEnded, outcome, s.now()
	ok, err := s.store.UpdateCall(ctx, up, from)
	if err != nil || !ok {
		return false, err
	}
	s.calls.forget(callID)
	sig := &CallSignal{CallID: call.ID, ChatID: call.ChatID, Kind: CallEnded, FromUserID: call.CallerID, Video: call.Video,
		Outcome: outcome, DurationMS: up.Duration().Milliseconds()}
	bg := context.WithoutCancel(ctx)
	s.emitCall(bg, call.CallerID, sig)
	s.emitCall(bg, call.CalleeID, sig)
	s.recordCall(bg, up)
	return true, nil
}

// recordCall leaves an ended call in its chat as a service message from
// the caller, with the call's record in its extras. The call has
// happened: a failure here is logged, not returned.
func (s *Service) recordCall(ctx context.Context, call herald.Call) {
	rec := herald.CallRecord{Video: call.Video, Outcome: call.Outcome, DurationMS: call.Duration().Milliseconds()}
	names := s.UserNames(ctx, call.CallerID, call.CalleeID)
	m := herald.Message{ChatID: call.ChatID, SenderID: call.CallerID, Service: true, SentAt: s.now(),
		Text: herald.CallText(names[call.CallerID], names[call.CalleeID], rec)}
	extra, err := s.sealExtras(call.ChatID, herald.Extras{Call: &rec})
	if err == nil {
		m.Extra = extra
		_, err = s.append(ctx, m)
	}
	if err != nil {
		s.log.Warn("record call", "chat", call.ChatID, "err", err)
	}
}

// otherMember is the other person in a direct chat.
func (s *Service) otherMember(ctx context.Context, ch herald.Chat, me int64) (int64, error) {
	members, err := s.store.Members(ctx, ch.ID)
	if err != nil {
		return 0, err
	}
	for _, m := range members {
		if m.UserID != me {
			return m.UserID, nil
		}
	}
	return 0, herald.Errorf(herald.Invalid, "there is nobody else in this chat to call")
}

func validSDP(sdp string) error {
	if len(sdp) > herald.MaxCallSDP {
		return herald.Errorf(herald.TooLarge, "a session description is at most %d bytes", herald.MaxCallSDP)
	}
	if sdp == "" || !validText(sdp) {
		return herald.Errorf(herald.Invalid, "a call needs a session description (WebRTC SDP text)")
	}
	return nil
}

// validText is UTF-8 without NUL: SDP and candidates are text, and
// devices parse them.
func validText(s string) bool {
	for _, r := range s {
		if r == 0 || r == '\uFFFD' {
			return false
		}
	}
	return true
}

func newCallID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// count spends one of a device's ICE candidates in a call.
func (l *callLimits) count(callID string, deviceID int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.candidates == nil || len(l.candidates) > 10_000 {
		l.candidates = map[string]map[int64]int{} // calls whose end this node never saw
	}
	per := l.candidates[callID]
	if per == nil {
		per = map[int64]int{}
		l.candidates[callID] = per
	}
	if per[deviceID] >= herald.MaxCallCandidates {
		return false
	}
	per[deviceID]++
	return true
}

func (l *callLimits) forget(callID string) {
	l.mu.Lock()
	delete(l.candidates, callID)
	l.mu.Unlock()
}
