package transport

import (
	"context"

	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/service"
	"google.golang.org/protobuf/proto"
)

// callMethods carry 1:1 calls' signalling (docs/CALLS.md).
var callMethods = map[string]method{
	"calls.start": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.StartCallRequest) (proto.Message, error) {
		call, err := c.srv.svc.StartCall(ctx, caller, peer(r.Peer), r.Video, r.Sdp)
		if err != nil {
			return nil, err
		}
		return &pb.CallInfo{CallId: call.ID, ChatId: call.ChatID, PeerId: call.CalleeID, Video: call.Video}, nil
	}),
	"calls.answer": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.AnswerCallRequest) (proto.Message, error) {
		call, err := c.srv.svc.AnswerCall(ctx, caller, r.CallId, r.Sdp)
		if err != nil {
			return nil, err
		}
		return &pb.CallInfo{CallId: call.ID, ChatId: call.ChatID, PeerId: call.CallerID, Video: call.Video}, nil
	}),
	"calls.decline": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.CallRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.DeclineCall(ctx, caller, r.CallId)
	}),
	"calls.hangup": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.CallRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.HangUp(ctx, caller, r.CallId)
	}),
	"calls.ice_servers": handler(true, func(ctx context.Context, c *conn, caller service.Caller, _ *pb.Empty) (proto.Message, error) {
		servers, err := c.srv.svc.ICEServers(ctx, caller)
		out := &pb.IceServerList{}
		for _, s := range servers {
			out.Servers = append(out.Servers, &pb.IceServer{Urls: s.URLs, Username: s.Username, Credential: s.Credential})
		}
		return out, err
	}),
	"calls.candidate": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.CallCandidateRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.CallCandidate(ctx, caller, r.CallId, r.Candidate)
	}),
}

func init() {
	for name, m := range callMethods {
		if _, dup := methods[name]; dup {
			panic("transport: method " + name + " defined twice")
		}
		methods[name] = m
	}
}

// encodeCall is a call's signal as a frame.
func encodeCall(sig *service.CallSignal, from string) []byte {
	b, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Call{Call: &pb.CallEvent{
		CallId: sig.CallID, ChatId: sig.ChatID, Kind: sig.Kind, FromId: sig.FromUserID, From: from, FromDevice: sig.FromDevice,
		Video: sig.Video, Sdp: sig.SDP, Candidate: sig.Candidate, Outcome: sig.Outcome, DurationMs: sig.DurationMS,
	}}})
	return b
}
