package client

import (
	"context"

	pb "github.com/heraldim/herald/proto/herald/v1"
)

// StartCall rings every device of the other person in a direct chat with
// this device's WebRTC offer. The answer, the
// other side's ICE candidates and the end arrive as Events with Call set.
// It fails with BUSY when they (or you) are in another call.
func (c *Client) StartCall(ctx context.Context, p *pb.Peer, video bool, offer string) (*pb.CallInfo, error) {
	out := &pb.CallInfo{}
	return out, c.Call(ctx, "calls.start", &pb.StartCallRequest{Peer: p, Video: video, Sdp: offer}, out)
}

// AnswerCall answers a ringing call on this device; the other devices of
// this user stop ringing.
func (c *Client) AnswerCall(ctx context.Context, callID, answer string) (*pb.CallInfo, error) {
	out := &pb.CallInfo{}
	return out, c.Call(ctx, "calls.answer", &pb.AnswerCallRequest{CallId: callID, Sdp: answer}, out)
}

// DeclineCall turns down a ringing call.
func (c *Client) DeclineCall(ctx context.Context, callID string) error {
	return c.Call(ctx, "calls.decline", &pb.CallRequest{CallId: callID}, nil)
}

// HangUp ends a call, ringing or active.
func (c *Client) HangUp(ctx context.Context, callID string) error {
	return c.Call(ctx, "calls.hangup", &pb.CallRequest{CallId: callID}, nil)
}

// CallCandidate sends an ICE candidate (RTCIceCandidate JSON) to the
// other side.
func (c *Client) CallCandidate(ctx context.Context, callID, candidate string) error {
	return c.Call(ctx, "calls.candidate", &pb.CallCandidateRequest{CallId: callID, Candidate: candidate}, nil)
}
