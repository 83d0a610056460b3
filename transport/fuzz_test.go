package transport

import (
	"testing"

	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"google.golang.org/protobuf/proto"
)

func frame(t testing.TB, method string, params proto.Message) []byte {
	p, err := proto.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Request{Request: &pb.Request{Id: 7, Method: method, Params: p}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRequest(t *testing.T) {
	resp, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Response{Response: &pb.Response{Id: 1}}})
	tests := []struct {
		name   string
		binary bool
		data   []byte
		method string // empty: want an INVALID_ARGUMENT error
	}{
		{"request", true, frame(t, "messages.send", &pb.SendRequest{Text: "hi"}), "messages.send"},
		{"text frame", false, []byte(`{"method":"x"}`), ""},
		{"garbage", true, []byte{0xff, 0xff, 0xff, 0x01}, ""},
		{"truncated", true, frame(t, "messages.send", &pb.SendRequest{Text: "hello"})[:5], ""},
		{"response from a client", true, resp, ""},
		{"empty", true, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := decodeRequest(tt.binary, tt.data)
			if tt.method == "" {
				if !herald.IsKind(err, herald.Invalid) {
					t.Fatalf("got %v, %v; want INVALID_ARGUMENT", req, err)
				}
				return
			}
			if err != nil || req.Method != tt.method || req.Id != 7 {
				t.Fatalf("got %v, %v", req, err)
			}
		})
	}
}

// FuzzDecodeRequest feeds arbitrary bytes to the frame decoder and to the
// parameter decoder of every method: nothing may panic, and a frame that
// decodes must survive a round trip.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(frame(f, "messages.send", &pb.SendRequest{Peer: &pb.Peer{Username: "bobby"}, Text: "hello"}))
	f.Add(frame(f, "auth.login", &pb.LoginRequest{Username: "alice", Password: "x"}))
	f.Add(frame(f, "updates.difference", &pb.DifferenceRequest{Pts: 5}))
	f.Add([]byte{0x0a, 0x80})
	f.Add([]byte("\x0a\x05\x12\x03\xff\xfe\xfd"))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeRequest(true, data)
		if err != nil {
			if herald.ErrorKind(err) != herald.Invalid {
				t.Fatalf("decoder error of kind %s", herald.ErrorKind(err))
			}
		} else {
			b, err := proto.Marshal(req)
			if err != nil {
				t.Fatalf("decoded request does not re-encode: %v", err)
			}
			var again pb.Request
			if err := proto.Unmarshal(b, &again); err != nil || !proto.Equal(req, &again) {
				t.Fatalf("round trip changed the request")
			}
		}
		for name, m := range methods {
			p, err := m.decode(data)
			if err != nil {
				if herald.ErrorKind(err) != herald.Invalid {
					t.Fatalf("%s: decoder error of kind %s", name, herald.ErrorKind(err))
				}
				continue
			}
			if _, err := proto.Marshal(p); err != nil {
				t.Fatalf("%s: decoded params do not re-encode: %v", name, err)
			}
		}
	})
}
