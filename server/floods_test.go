package server_test

// Flood tests (issue 22, "Floods"): each attack runs against a real node on
// loopback over real sockets, is bounded in count, ends by itself, and
// asserts what users rely on: the attacker's connection is refused or
// closed with the right code, the server stays up, another user's message
// still arrives, and memory does not grow with the size of the flood.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
	"github.com/heraldim/herald/transport"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// startNodeLimits starts a node with the given connection limits.
func startNodeLimits(t *testing.T, limits transport.Limits) *server.Node {
	t.Helper()
	n, err := server.Open(server.Config{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), PasswordCost: cheap, AbuseLimits: lax, Limits: limits,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// metric reads one unlabelled sample from the node's /metrics.
func metric(t *testing.T, n *server.Node, name string) float64 {
	t.Helper()
	resp, err := http.Get(n.URL() + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not exported", name)
	return 0
}

// stillServed proves the server is up and serving another user: a fresh
// message from a to b arrives.
func stillServed(t *testing.T, n *server.Node, a, b *device, text string) {
	t.Helper()
	resp, err := http.Get(n.URL() + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	send(t, a, to(b.user.name), text)
	// b may also be receiving the flood's own messages; wait for this one.
	next(t, b, func(u *pb.Update) bool { return u.GetNewMessage().GetText() == text })
}

// closeCode reads until the server closes the connection and returns the
// close code (-1 if the socket dropped without one).
func closeCode(ctx context.Context, ws *websocket.Conn) websocket.StatusCode {
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// nextResponse reads frames, skipping updates, until a response arrives;
// safe to call from any goroutine.
func nextResponse(ws *websocket.Conn) (*pb.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		var f pb.Frame
		if err := proto.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("server sent a bad frame: %w", err)
		}
		if resp := f.GetResponse(); resp != nil {
			return resp, nil
		}
	}
}

// liveHeap is the heap in use by live objects after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// heapNow is the heap's object bytes (live and not yet collected), cheap
// enough to read inside a flood.
func heapNow() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestFloodBigFrames: many connections, before and after login, send
// frames over the read limit — whole, and streamed as small fragments so
// no single fragment is large. Each is closed with 1009 (message too big)
// and another user's messages keep flowing throughout.
func TestFloodBigFrames(t *testing.T) {
	n := startNode(t, "")
	alice, bobby, mallory := signup(t, n, "alice"), signup(t, n, "bobby"), signup(t, n, "mallory")

	const attackers = 24
	var wg sync.WaitGroup
	codes := make(chan websocket.StatusCode, attackers)
	for i := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ws, _, err := websocket.Dial(ctx, strings.Replace(n.URL(), "http://", "ws://", 1)+"/v1/ws", nil)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer ws.CloseNow()
			if i%2 == 1 { // half log in first
				b, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Request{Request: &pb.Request{Id: 1, Method: "auth.resume", Params: marshal(&pb.AuthRequest{Token: mallory.token})}}})
				ws.Write(ctx, websocket.MessageBinary, b)
			}
			// Write while reading: the close arrives before a big write ends.
			go func() {
				switch i % 4 {
				case 0, 1: // one frame of 1 MiB (the limit is 64 KiB)
					ws.Write(ctx, websocket.MessageBinary, make([]byte, 1<<20))
				default: // a message streamed as up to 4 MiB of 1 KiB fragments
					w, err := ws.Writer(ctx, websocket.MessageBinary)
					if err != nil {
						return
					}
					chunk := make([]byte, 1<<10)
					for range 4 << 10 {
						if _, err := w.Write(chunk); err != nil {
							break
						}
					}
				}
			}()
			codes <- closeCode(ctx, ws)
		}()
	}
	// Another user's conversation carries on during the flood.
	stillServed(t, n, alice, bobby, "during the flood")
	wg.Wait()
	for range attackers {
		if c := <-codes; c != websocket.StatusMessageTooBig {
			t.Errorf("oversized message: closed with %v, want %v", c, websocket.StatusMessageTooBig)
		}
	}
	stillServed(t, n, alice, bobby, "after the flood")
}

// TestFloodMalformedFrames: connections sending bursts of text frames,
// garbage bytes and truncated protobuf each get a clear INVALID_ARGUMENT
// error per frame, are not served as requests, and stay usable; others are
// served meanwhile.
func TestFloodMalformedFrames(t *testing.T) {
	n := startNode(t, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	whole := marshal(&pb.Frame{Kind: &pb.Frame_Request{Request: &pb.Request{Id: 7, Method: "messages.send",
		Params: marshal(&pb.SendRequest{Peer: to(bobby.user.name), Text: "never delivered"})}}})
	bad := []struct {
		typ websocket.MessageType
		b   []byte
	}{
		{websocket.MessageText, []byte(`{"method":"messages.send","text":"x"}`)},
		{websocket.MessageText, []byte("\xff\xfe not UTF-8")},
		{websocket.MessageBinary, []byte{0xff, 0x13, 0x37, 0x00}},
		{websocket.MessageBinary, whole[:len(whole)/2]},             // truncated protobuf
		{websocket.MessageBinary, whole[:len(whole)-1]},             // one byte short
		{websocket.MessageBinary, append([]byte{0x0a, 0x80}, 0x80)}, // unterminated varint length
	}
	const conns, rounds = 8, 50
	var wg sync.WaitGroup
	for range conns {
		r := dialRaw(t, n.URL())
		r.request(1, "auth.resume", marshal(&pb.AuthRequest{Token: alice.token}))
		if resp := r.response(); resp.Error != nil {
			t.Fatalf("resume: %v", resp.Error)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				for _, f := range bad {
					if err := r.ws.Write(context.Background(), f.typ, f.b); err != nil {
						t.Errorf("write: %v", err)
						return
					}
					resp, err := nextResponse(r.ws)
					if err != nil {
						t.Errorf("read: %v", err)
						return
					}
					if resp.GetError().GetKind() != "INVALID_ARGUMENT" || resp.GetError().GetMessage() == "" {
						t.Errorf("malformed frame %q: got %v, want INVALID_ARGUMENT with a sentence", f.b, resp)
						return
					}
				}
			}
			// The connection still works after the burst.
			r.ws.Write(context.Background(), websocket.MessageBinary, marshal(&pb.Frame{Kind: &pb.Frame_Request{Request: &pb.Request{Id: 2, Method: "users.me"}}}))
			if resp, err := nextResponse(r.ws); err != nil || resp.Error != nil {
				t.Errorf("users.me after the burst: %v %v", resp, err)
			}
		}()
	}
	stillServed(t, n, alice, bobby, "during the garbage")
	wg.Wait()
	stillServed(t, n, alice, bobby, "after the garbage")
}

// nestedGroups is n unknown start-group tags, then n end-group tags:
// protobuf's deepest cheap nesting, a few bytes per level.
func nestedGroups(field protowire.Number, depth int) []byte {
	var b []byte
	for range depth {
		b = protowire.AppendTag(b, field, protowire.StartGroupType)
	}
	for range depth {
		b = protowire.AppendTag(b, field, protowire.EndGroupType)
	}
	return b
}

// TestFloodNestedAndOversizedProtobuf: frames and parameters built to make
// a decoder recurse or allocate — unknown groups nested thousands deep,
// length prefixes claiming gigabytes, repeated fields filling the frame
// limit — get a clear error (or, for a harmless request, an answer),
// never INTERNAL or a crash, and others are served meanwhile.
func TestFloodNestedAndOversizedProtobuf(t *testing.T) {
	n := startNode(t, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	r := dialRaw(t, n.URL())
	r.request(1, "auth.resume", marshal(&pb.AuthRequest{Token: alice.token}))
	if resp := r.response(); resp.Error != nil {
		t.Fatalf("resume: %v", resp.Error)
	}
	frame := func(method string, params []byte) []byte {
		return marshal(&pb.Frame{Kind: &pb.Frame_Request{Request: &pb.Request{Id: 9, Method: method, Params: params}}})
	}
	// A varint-length field claiming 2 GiB with a few bytes behind it.
	var liar []byte
	liar = protowire.AppendTag(liar, 1, protowire.BytesType)
	liar = protowire.AppendVarint(liar, 1<<31)
	liar = append(liar, "short"...)
	// 60,000 ids, packed, and 12,000 unpacked: both under the frame limit.
	var ids []int64
	for i := range 60_000 {
		ids = append(ids, int64(i%100+1))
	}
	var unpacked []byte
	unpacked = protowire.AppendTag(unpacked, 1, protowire.VarintType)
	unpacked = protowire.AppendVarint(unpacked, 1)
	for range 12_000 {
		unpacked = protowire.AppendTag(unpacked, 2, protowire.VarintType)
		unpacked = protowire.AppendVarint(unpacked, 5)
	}
	var names []string
	for i := range 5_000 {
		names = append(names, fmt.Sprintf("u%07d", i))
	}

	cases := []struct {
		name  string
		frame []byte
		kinds string // acceptable outcomes, "OK" for an answer
	}{
		{"frame: unknown groups 15,000 deep", append(frame("users.me", nil), nestedGroups(99, 15_000)...), "INVALID_ARGUMENT"},
		{"frame: unknown groups 5,000 deep", append(frame("users.me", nil), nestedGroups(99, 5_000)...), "OK INVALID_ARGUMENT"},
		{"params: unknown groups 15,000 deep", frame("messages.send", append(marshal(&pb.SendRequest{Peer: to(bobby.user.name), Text: "x"}), nestedGroups(99, 15_000)...)), "INVALID_ARGUMENT"},
		{"params: peer nested in groups", frame("messages.history", nestedGroups(1, 10_000)), "INVALID_ARGUMENT"},
		{"frame: length claims 2 GiB", liar, "INVALID_ARGUMENT"},
		{"params: length claims 2 GiB", frame("messages.send", liar), "INVALID_ARGUMENT"},
		{"params: 60,000 packed ids", frame("messages.delete", marshal(&pb.DeleteRequest{ChatId: 1, Ids: ids})), "TOO_LARGE INVALID_ARGUMENT NOT_FOUND PERMISSION_DENIED OK"},
		{"params: 12,000 unpacked ids", frame("messages.delete", unpacked), "TOO_LARGE INVALID_ARGUMENT NOT_FOUND PERMISSION_DENIED OK"},
		{"params: 5,000 usernames", frame("groups.add", marshal(&pb.MembersRequest{ChatId: 1, Usernames: names})), "TOO_LARGE INVALID_ARGUMENT NOT_FOUND PERMISSION_DENIED"},
	}
	for _, c := range cases {
		if len(c.frame) > int(transport.DefaultLimits.MaxFrameBytes) {
			t.Fatalf("%s: %d bytes is over the frame limit; the test would only show 1009", c.name, len(c.frame))
		}
		for range 5 { // a few times each: a leak or a crash would show
			if err := r.write(websocket.MessageBinary, c.frame); err != nil {
				t.Fatalf("%s: write: %v", c.name, err)
			}
			resp := r.response()
			kind := "OK"
			if resp.Error != nil {
				kind = resp.Error.Kind
				if resp.Error.Message == "" {
					t.Errorf("%s: %s without a sentence", c.name, kind)
				}
			}
			if !strings.Contains(" "+c.kinds+" ", " "+kind+" ") {
				t.Errorf("%s: got %s (%v), want one of %s", c.name, kind, resp.Error, c.kinds)
			}
		}
		stillServed(t, n, bobby, alice, "after "+c.name)
	}
}

// TestFloodReaderThatNeverReads: a logged-in client asks for large
// history pages and is sent large messages but never reads a byte. Its
// outbound queue fills, it is cut off as a slow consumer, the server's
// heap stays bounded by the queue (not the flood), and others are served.
func TestFloodReaderThatNeverReads(t *testing.T) {
	n := startNodeLimits(t, transport.Limits{QueueFrames: 16, WriteTimeout: time.Second})
	alice, bobby, lurk := signup(t, n, "alice"), signup(t, n, "bobby"), signup(t, n, "lurk")

	// 40 messages of 4,096 two-byte characters: a history page of them is
	// about 330 KB.
	big := strings.Repeat("é", 4096)
	for range 40 {
		send(t, bobby, to(lurk.user.name), big)
	}
	idle := liveHeap()
	slowBefore := metric(t, n, "herald_slow_consumers_total")

	r := dialRaw(t, n.URL())
	r.request(1, "auth.resume", marshal(&pb.AuthRequest{Token: lurk.token}))
	history := marshal(&pb.Frame{Kind: &pb.Frame_Request{Request: &pb.Request{Id: 2, Method: "messages.history",
		Params: marshal(&pb.HistoryRequest{Peer: to(bobby.user.name), Limit: 200})}}})

	// Requests are tiny and sit in socket buffers until the server reads
	// them, so write them all and then watch: without a queue bound the
	// server would buffer all 300 pages (about 100 MB) for this client.
	const requests = 300
	const heapBound = 64 << 20 // generous: 16 pages and socket buffers are a few MB
	for i := range requests {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := r.ws.Write(ctx, websocket.MessageBinary, history)
		cancel()
		if err != nil {
			break // already cut off
		}
		if i%30 == 0 { // pushed updates too: more messages to the non-reader
			go bobby.Send(context.Background(), &pb.SendRequest{Peer: to(lurk.user.name), Text: big})
		}
	}
	// It is cut off either when its queue fills (counted as a slow
	// consumer) or when a write to it stalls past the write timeout,
	// whichever comes first on this machine: its connection goes, leaving
	// the three well-behaved clients.
	deadline := time.Now().Add(60 * time.Second)
	for metric(t, n, "herald_connections") > 3 {
		if h := heapNow(); h > idle+heapBound {
			t.Fatalf("with unread history pages queued the heap grew by %d MB", (h-idle)>>20)
		}
		if time.Now().After(deadline) {
			t.Fatalf("a client that never reads was not cut off within 60 s (heap +%d MB)", int64(heapNow()-idle)>>20)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("slow consumers counted: %v", metric(t, n, "herald_slow_consumers_total")-slowBefore)
	// Its socket is closed: the next writes fail, once the server has
	// stopped draining what it still sends (a closing socket is read for
	// up to 2 s, so that a close frame is not destroyed by a reset).
	var err error
	for range 500 {
		if err = r.ws.Write(context.Background(), websocket.MessageBinary, history); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err == nil {
		t.Errorf("the non-reader's socket still accepts frames")
	}
	stillServed(t, n, alice, bobby, "after the non-reader")
	// Memory held for the non-reader is gone with it. The bound is the
	// queue's worth of pages with slack, far below the flood.
	deadline = time.Now().Add(10 * time.Second)
	for {
		live := liveHeap()
		if live <= idle+(32<<20) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live heap %d MB after the flood, %d MB idle", live>>20, idle>>20)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestFloodUnauthenticatedSockets: 200 sockets from one address open and
// never say anything. Each is closed by the authentication deadline (or
// refused outright by a connection cap), none stays open, and the
// connection gauge returns to where it was; others are served meanwhile.
func TestFloodUnauthenticatedSockets(t *testing.T) {
	n := startNodeLimits(t, transport.Limits{AuthTimeout: time.Second})
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	base := metric(t, n, "herald_connections")

	const sockets = 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	sem := make(chan struct{}, 50) // dial 50 at a time
	for range sockets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ws, resp, err := websocket.Dial(ctx, strings.Replace(n.URL(), "http://", "ws://", 1)+"/v1/ws", nil)
			<-sem
			var out string
			switch {
			case err != nil && resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable):
				out = "refused"
			case err != nil:
				out = "dial error: " + err.Error()
			default:
				defer ws.CloseNow()
				// Never send; read until the server hangs up.
				out = fmt.Sprint(closeCode(ctx, ws))
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					out = "still open after 20s"
				}
			}
			mu.Lock()
			outcomes[out]++
			mu.Unlock()
		}()
	}
	stillServed(t, n, alice, bobby, "while sockets idle")
	wg.Wait()
	for out, k := range outcomes {
		if out != fmt.Sprint(websocket.StatusPolicyViolation) && out != fmt.Sprint(websocket.StatusTryAgainLater) && out != "refused" {
			t.Errorf("%d sockets: %s; want closed for not authenticating (%v) or refused", k, out, websocket.StatusPolicyViolation)
		}
	}
	t.Logf("outcomes: %v", outcomes)
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, n, "herald_connections") > base {
		if time.Now().After(deadline) {
			t.Fatalf("connections: %v open, %v before the flood", metric(t, n, "herald_connections"), base)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stillServed(t, n, alice, bobby, "after the idle sockets")
}
