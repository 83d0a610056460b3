package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/heraldim/herald"
)

// testCalls checks the calls' signalling state: the busy check, one
// winner among racing transitions, and round-tripping every field.
func testCalls(t *testing.T, f *fixture) {
	ctx := f.ctx
	a, b, c := f.user(), f.user(), f.user()
	ab, ac := f.direct(a.ID, b.ID), f.direct(a.ID, c.ID)
	start := f.tick()
	call := herald.Call{ID: "call-ab", ChatID: ab.ID, CallerID: a.ID, CalleeID: b.ID, CallerDevice: 7, Video: true,
		State: herald.CallRinging, StartedAt: start}
	if _, err := f.s.CreateCall(ctx, call); err != nil {
		t.Fatalf("CreateCall: %v", err)
	}
	got, err := f.s.Call(ctx, call.ID)
	if err != nil || got != call {
		t.Fatalf("Call = %+v, %v; want %+v", got, err, call)
	}
	_, err = f.s.Call(ctx, "no-such-call")
	wantKind(t, "Call(unknown)", err, herald.NotFound)

	// While a rings, neither a nor b can be in a second call, whoever places it.
	for _, tc := range []struct {
		name           string
		caller, callee int64
		chat           int64
		busy           int64
	}{
		{"caller calls again", a.ID, c.ID, ac.ID, a.ID},
		{"someone calls the callee", c.ID, b.ID, ab.ID, b.ID},
		{"the callee calls back", b.ID, a.ID, ab.ID, b.ID},
	} {
		busy, err := f.s.CreateCall(ctx, herald.Call{ID: "second-" + tc.name, ChatID: tc.chat, CallerID: tc.caller, CalleeID: tc.callee,
			State: herald.CallRinging, StartedAt: start.Add(time.Second)})
		wantKind(t, "CreateCall while "+tc.name, err, herald.AlreadyExists)
		if busy != tc.busy {
			t.Errorf("CreateCall while %s: busy user %d, want %d", tc.name, busy, tc.busy)
		}
	}

	// Two devices answer at once: exactly one wins.
	var wg sync.WaitGroup
	wins := make(chan int64, 2)
	for _, dev := range []int64{11, 12} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			up := call
			up.State, up.CalleeDevice, up.AcceptedAt = herald.CallActive, dev, start.Add(2*time.Second)
			ok, err := f.s.UpdateCall(ctx, up, herald.CallRinging)
			if err != nil {
				t.Errorf("UpdateCall(answer by %d): %v", dev, err)
			}
			if ok {
				wins <- dev
			}
		}()
	}
	wg.Wait()
	close(wins)
	var winners []int64
	for d := range wins {
		winners = append(winners, d)
	}
	if len(winners) != 1 {
		t.Fatalf("answers that won: %v, want exactly one", winners)
	}
	got, _ = f.s.Call(ctx, call.ID)
	if got.State != herald.CallActive || got.CalleeDevice != winners[0] || !got.AcceptedAt.Equal(start.Add(2*time.Second)) {
		t.Errorf("after the answer: %+v", got)
	}

	// Ended, the call frees both people.
	end := got
	end.State, end.Outcome, end.EndedAt = herald.CallEnded, herald.CallOutcomeEnded, start.Add(time.Minute)
	if ok, err := f.s.UpdateCall(ctx, end, herald.CallRinging); ok || err != nil {
		t.Errorf("UpdateCall from a state the call is not in = %v, %v; want false, nil", ok, err)
	}
	if ok, err := f.s.UpdateCall(ctx, end, herald.CallActive); !ok || err != nil {
		t.Fatalf("UpdateCall(hang up) = %v, %v", ok, err)
	}
	if got, _ := f.s.Call(ctx, call.ID); got != end {
		t.Errorf("ended call = %+v, want %+v", got, end)
	}
	if _, err := f.s.CreateCall(ctx, herald.Call{ID: "after", ChatID: ab.ID, CallerID: b.ID, CalleeID: a.ID, CallerDevice: 1,
		State: herald.CallRinging, StartedAt: start.Add(2 * time.Minute)}); err != nil {
		t.Errorf("CreateCall after the first ended: %v", err)
	}

	// A call that rang out without a hang-up stops making c busy.
	if _, err := f.s.CreateCall(ctx, herald.Call{ID: "rang-out", ChatID: ac.ID, CallerID: c.ID, CalleeID: a.ID,
		State: herald.CallRinging, StartedAt: start.Add(2 * time.Minute)}); herald.ErrorKind(err) != herald.AlreadyExists {
		t.Errorf("CreateCall to a ringing a = %v, want AlreadyExists", err)
	}
	late := start.Add(2*time.Minute + herald.CallRingTimeout)
	if _, err := f.s.CreateCall(ctx, herald.Call{ID: "later", ChatID: ac.ID, CallerID: c.ID, CalleeID: a.ID,
		State: herald.CallRinging, StartedAt: late}); err != nil {
		t.Errorf("CreateCall once the ringing call timed out: %v", err)
	}
}
