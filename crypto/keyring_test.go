package crypto_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldim/herald/crypto"
)

// t0 is an arbitrary fixed instant on an hour boundary; tests use explicit
// times relative to it and never the wall clock.
var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

func testMaster(b byte) []byte { return bytes.Repeat([]byte{b}, crypto.KeySize) }

func newRing(t testing.TB) (*crypto.KeyRing, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keyring")
	r, err := crypto.OpenKeyRing(path, testMaster(1), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return r, path
}

func mustSeal(t testing.TB, r *crypto.KeyRing, exp time.Time, id int64, pt []byte) []byte {
	t.Helper()
	s, err := r.SealUntil(exp, id, pt)
	if err != nil {
		t.Fatalf("SealUntil(%v): %v", exp, err)
	}
	return s
}

func TestKeyRingRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		exp  time.Time
		id   int64
		pt   []byte
	}{
		{"empty", t0.Add(30 * time.Minute), 1, nil},
		{"on a bucket boundary", t0, 7, []byte("boundary")},
		{"one second after a boundary", t0.Add(time.Second), 7, []byte("second")},
		{"sub-second", t0.Add(time.Nanosecond), -3, []byte("nano")},
		{"just before a boundary", t0.Add(-time.Nanosecond), 1 << 62, []byte("x")},
		{"200 bytes", t0.Add(7 * 24 * time.Hour), 42, bytes.Repeat([]byte("m"), 200)},
		{"64 KiB", t0.Add(365 * 24 * time.Hour), 0, bytes.Repeat([]byte{0xa5}, 64<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newRing(t)
			s := mustSeal(t, r, tc.exp, tc.id, tc.pt)
			if !crypto.RingSealed(s) {
				t.Error("RingSealed = false for a ring value")
			}
			if len(s) != len(tc.pt)+crypto.RingOverhead {
				t.Errorf("sealed length %d, want %d", len(s), len(tc.pt)+crypto.RingOverhead)
			}
			// The key must survive every destruction up to the expiry...
			if _, err := r.DestroyBefore(tc.exp.Add(-time.Nanosecond)); err != nil {
				t.Fatal(err)
			}
			got, err := r.Open(tc.id, s)
			if err != nil || !bytes.Equal(got, tc.pt) {
				t.Fatalf("Open just before expiry = %q, %v; want %q", got, err, tc.pt)
			}
			// ...and be gone once one bucket width has passed after it.
			if n, err := r.DestroyBefore(tc.exp.Add(time.Hour)); err != nil || n != 1 {
				t.Fatalf("DestroyBefore(expiry+width) = %d, %v; want 1, nil", n, err)
			}
			if _, err := r.Open(tc.id, s); !errors.Is(err, crypto.ErrExpired) {
				t.Fatalf("Open after expiry+width: %v, want ErrExpired", err)
			}
		})
	}
}

func TestKeyRingBuckets(t *testing.T) {
	r, _ := newRing(t)
	// Expiries in (t0-1h, t0] share the bucket ending at t0; t0+1ns starts
	// the next one.
	for _, e := range []time.Time{t0.Add(-59 * time.Minute), t0.Add(-time.Second), t0} {
		mustSeal(t, r, e, 1, []byte("a"))
	}
	if got := r.Buckets(); got != 1 {
		t.Fatalf("Buckets = %d, want 1", got)
	}
	mustSeal(t, r, t0.Add(time.Nanosecond), 1, []byte("b"))
	mustSeal(t, r, t0.Add(5*time.Hour), 1, []byte("c"))
	if got := r.Buckets(); got != 3 {
		t.Fatalf("Buckets = %d, want 3", got)
	}
}

func TestKeyRingTamper(t *testing.T) {
	r, _ := newRing(t)
	const id = 99
	s := mustSeal(t, r, t0, id, []byte("attack at dawn"))
	for i := range s {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(s)
			bad[i] ^= mask
			if pt, err := r.Open(id, bad); !errors.Is(err, crypto.ErrCorrupt) {
				t.Errorf("byte %d ^ %#x: Open = %q, %v; want ErrCorrupt", i, mask, pt, err)
			}
		}
	}
	for n := range len(s) {
		if _, err := r.Open(id, s[:n]); !errors.Is(err, crypto.ErrCorrupt) {
			t.Errorf("truncated to %d: %v, want ErrCorrupt", n, err)
		}
	}
	if _, err := r.Open(id, append(bytes.Clone(s), 0)); !errors.Is(err, crypto.ErrCorrupt) {
		t.Errorf("extended by one byte: %v, want ErrCorrupt", err)
	}
}

func TestKeyRingWrongContext(t *testing.T) {
	r, _ := newRing(t)
	other, _ := newRing(t) // same master key, different bucket keys
	sealer, err := crypto.NewSealer(testMaster(1))
	if err != nil {
		t.Fatal(err)
	}
	s := mustSeal(t, r, t0, 5, []byte("hello"))
	mustSeal(t, other, t0, 5, []byte("same bucket in another ring"))
	for _, tc := range []struct {
		name string
		open func() ([]byte, error)
	}{
		{"wrong id", func() ([]byte, error) { return r.Open(6, s) }},
		{"negated id", func() ([]byte, error) { return r.Open(-5, s) }},
		{"another ring with the same bucket", func() ([]byte, error) { return other.Open(5, s) }},
		{"a Sealer value given to a ring", func() ([]byte, error) { return r.Open(5, sealer.Seal(5, []byte("hello"))) }},
		{"a ring value given to a Sealer", func() ([]byte, error) { return sealer.Open(5, s) }},
		{"a bucket the ring never had", func() ([]byte, error) {
			return r.Open(5, mustSeal(t, other, t0.Add(24*time.Hour), 5, []byte("x")))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if pt, err := tc.open(); !errors.Is(err, crypto.ErrCorrupt) {
				t.Fatalf("Open = %q, %v; want ErrCorrupt", pt, err)
			}
		})
	}
}

func TestKeyRingDestroy(t *testing.T) {
	r, path := newRing(t)
	early := mustSeal(t, r, t0.Add(10*time.Minute), 1, []byte("early"))   // bucket ends t0+1h
	middle := mustSeal(t, r, t0.Add(90*time.Minute), 1, []byte("middle")) // t0+2h
	late := mustSeal(t, r, t0.Add(150*time.Minute), 1, []byte("late"))    // t0+3h

	// A bucket is destroyed only when its END has passed, not its start
	// or the expiry of what is in it.
	for _, tc := range []struct {
		at                   time.Time
		destroyed, remaining int
	}{
		{t0.Add(59 * time.Minute), 0, 3},
		{t0.Add(time.Hour - time.Nanosecond), 0, 3},
		{t0.Add(time.Hour), 1, 2},
		{t0.Add(time.Hour), 0, 2}, // again: idempotent
		{t0, 0, 2},                // backwards: ignored
		{t0.Add(2*time.Hour + 30*time.Minute), 1, 1},
	} {
		n, err := r.DestroyBefore(tc.at)
		if err != nil || n != tc.destroyed || r.Buckets() != tc.remaining {
			t.Fatalf("DestroyBefore(%v) = %d, %v, Buckets %d; want %d, nil, %d", tc.at, n, err, r.Buckets(), tc.destroyed, tc.remaining)
		}
	}
	for _, s := range [][]byte{early, middle} {
		if _, err := r.Open(1, s); !errors.Is(err, crypto.ErrExpired) {
			t.Errorf("destroyed bucket: %v, want ErrExpired", err)
		}
	}
	if pt, err := r.Open(1, late); err != nil || string(pt) != "late" {
		t.Errorf("live bucket: %q, %v", pt, err)
	}

	// Refusing expiries at or before the horizon: a fresh key for a
	// bucket already swept would be destroyed by the next sweep while
	// its caller still counts on it.
	h := t0.Add(2*time.Hour + 30*time.Minute)
	for _, exp := range []time.Time{t0, h.Add(-time.Second), h} {
		if _, err := r.SealUntil(exp, 1, []byte("too late")); !errors.Is(err, crypto.ErrExpired) {
			t.Errorf("SealUntil(%v) with horizon %v: %v, want ErrExpired", exp, h, err)
		}
	}
	if r.Buckets() != 1 {
		t.Errorf("refused SealUntil created a bucket: Buckets = %d", r.Buckets())
	}
	// Just after the horizon is fine, and lands in the live bucket that
	// ends at t0+3h: the next sweep does not remove it.
	s := mustSeal(t, r, h.Add(time.Nanosecond), 1, []byte("just in time"))
	if n, err := r.DestroyBefore(h.Add(time.Second)); err != nil || n != 0 {
		t.Fatalf("DestroyBefore = %d, %v", n, err)
	}
	if _, err := r.Open(1, s); err != nil {
		t.Fatal(err)
	}

	// A restart remembers both the destroyed keys and the horizon.
	r2, err := crypto.OpenKeyRing(path, testMaster(1), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Buckets() != 1 {
		t.Fatalf("after reopen Buckets = %d, want 1", r2.Buckets())
	}
	if _, err := r2.Open(1, middle); !errors.Is(err, crypto.ErrExpired) {
		t.Errorf("after reopen, destroyed bucket: %v, want ErrExpired", err)
	}
	if _, err := r2.SealUntil(t0.Add(2*time.Hour), 1, []byte("x")); !errors.Is(err, crypto.ErrExpired) {
		t.Errorf("after reopen, SealUntil before the horizon: %v, want ErrExpired", err)
	}
	if pt, err := r2.Open(1, late); err != nil || string(pt) != "late" {
		t.Errorf("after reopen, live bucket: %q, %v", pt, err)
	}
}

func TestKeyRingSealUntilRange(t *testing.T) {
	r, _ := newRing(t)
	for _, exp := range []time.Time{time.Unix(0, 0), time.Unix(-1, 0), {}, time.Unix(1<<62, 0)} {
		if _, err := r.SealUntil(exp, 1, []byte("x")); err == nil {
			t.Errorf("SealUntil(%v) succeeded", exp)
		}
	}
}

// TestKeyRingBackup is the issue's backup test at the level of the ring:
// a copy of the data taken while a value is live must not open with the
// current ring once the value's bucket has been destroyed — and a copy of
// the ring FILE taken at the same time does open it, which is why backups
// must exclude the ring file or the master key (see KeyRing).
func TestKeyRingBackup(t *testing.T) {
	r, path := newRing(t)
	const id = 12
	sealed := mustSeal(t, r, t0.Add(30*time.Second), id, []byte("gone in 30 seconds"))

	// The backup: the stored value and the ring file, copied while live.
	backupValue := bytes.Clone(sealed)
	backupRing := filepath.Join(t.TempDir(), "keyring")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(backupRing, b, 0o600); err != nil {
		t.Fatal(err)
	}

	if n, err := r.DestroyBefore(t0.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("DestroyBefore = %d, %v", n, err)
	}

	// The current ring, in this process and after a restart, cannot open
	// the backed-up value.
	if _, err := r.Open(id, backupValue); !errors.Is(err, crypto.ErrExpired) {
		t.Errorf("current ring: %v, want ErrExpired", err)
	}
	restarted, err := crypto.OpenKeyRing(path, testMaster(1), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.Open(id, backupValue); !errors.Is(err, crypto.ErrExpired) {
		t.Errorf("current ring after restart: %v, want ErrExpired", err)
	}

	// The old ring file plus the master key still opens it. This is a
	// fact of any key-destruction scheme, not a bug: a backup of the ring
	// is a backup of the key.
	old, err := crypto.OpenKeyRing(backupRing, testMaster(1), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := old.Open(id, backupValue); err != nil || string(pt) != "gone in 30 seconds" {
		t.Errorf("old ring copy: %q, %v; it is expected to open (backups must exclude the ring)", pt, err)
	}
	// Without the master key that copy is useless.
	if _, err := crypto.OpenKeyRing(backupRing, testMaster(2), time.Hour); err == nil {
		t.Error("old ring copy opened with another master key")
	}
}

// TestKeyRingScrubsOldFile shows the in-place overwrite: a hard link keeps
// the replaced file's inode reachable, and after a destruction it holds
// only zeros.
func TestKeyRingScrubsOldFile(t *testing.T) {
	r, path := newRing(t)
	mustSeal(t, r, t0, 1, []byte("x"))
	link := path + ".link"
	if err := os.Link(path, link); err != nil {
		t.Skipf("hard links unsupported here: %v", err)
	}
	if _, err := r.DestroyBefore(t0); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(link)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || !bytes.Equal(b, make([]byte, len(b))) {
		t.Fatalf("old ring file not overwritten with zeros: % x", b)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

func TestKeyRingFileHoldsNoRawKeys(t *testing.T) {
	r, path := newRing(t)
	for i := range 50 {
		mustSeal(t, r, t0.Add(time.Duration(i)*time.Hour), 1, []byte("x"))
	}
	check := func(when string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		keys := crypto.BucketKeys(r)
		if len(keys) != r.Buckets() || len(keys) == 0 {
			t.Fatalf("%s: %d keys for %d buckets", when, len(keys), r.Buckets())
		}
		for _, k := range keys {
			// Half a key is already too much to find in the file.
			for _, part := range [][]byte{k, k[:16], k[16:]} {
				if bytes.Contains(b, part) {
					t.Fatalf("%s: ring file contains raw key bytes %x", when, part)
				}
			}
		}
	}
	check("after creation")
	if _, err := r.DestroyBefore(t0.Add(10 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	check("after destruction")
	if err := r.Rewrap(testMaster(9)); err != nil {
		t.Fatal(err)
	}
	check("after rewrap")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("ring file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestKeyRingRewrap(t *testing.T) {
	r, path := newRing(t)
	s := mustSeal(t, r, t0, 3, []byte("survives rotation"))
	if err := r.Rewrap(testMaster(2)); err != nil {
		t.Fatal(err)
	}
	if pt, err := r.Open(3, s); err != nil || string(pt) != "survives rotation" {
		t.Fatalf("after Rewrap in process: %q, %v", pt, err)
	}
	// Buckets created after the rewrap are wrapped under the new key too.
	s2 := mustSeal(t, r, t0.Add(3*time.Hour), 3, []byte("new bucket"))

	_, err := crypto.OpenKeyRing(path, testMaster(1), time.Hour)
	if err == nil || !strings.Contains(err.Error(), "master key") {
		t.Fatalf("reopen with the old master key: %v, want an error naming the master key", err)
	}
	r2, err := crypto.OpenKeyRing(path, testMaster(2), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		s    []byte
		want string
	}{{s, "survives rotation"}, {s2, "new bucket"}} {
		if pt, err := r2.Open(3, v.s); err != nil || string(pt) != v.want {
			t.Errorf("after reopen with the new key: %q, %v; want %q", pt, err, v.want)
		}
	}
	if err := r.Rewrap(make([]byte, 16)); err == nil {
		t.Error("Rewrap accepted a short key")
	}
}

// TestKeyRingWidthChange: the width is configuration, not part of the
// file; changing it must never destroy a bucket before its end.
func TestKeyRingWidthChange(t *testing.T) {
	r, path := newRing(t)
	s := mustSeal(t, r, t0.Add(10*time.Minute), 1, []byte("hourly")) // ends t0+1h
	wide, err := crypto.OpenKeyRing(path, testMaster(1), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	d := mustSeal(t, wide, t0.Add(10*time.Minute), 1, []byte("daily")) // ends next midnight
	if n, err := wide.DestroyBefore(t0.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("DestroyBefore = %d, %v; want the hourly bucket only", n, err)
	}
	if _, err := wide.Open(1, s); !errors.Is(err, crypto.ErrExpired) {
		t.Errorf("hourly value: %v, want ErrExpired", err)
	}
	if _, err := wide.Open(1, d); err != nil {
		t.Errorf("daily value: %v", err)
	}
}

func TestOpenKeyRingArguments(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		master []byte
		width  time.Duration
		ok     bool
	}{
		{"zero width means the default", testMaster(1), 0, true},
		{"one second", testMaster(1), time.Second, true},
		{"short master key", make([]byte, 31), time.Hour, false},
		{"no master key", nil, time.Hour, false},
		{"negative width", testMaster(1), -time.Hour, false},
		{"sub-second width", testMaster(1), 500 * time.Millisecond, false},
		{"fractional seconds", testMaster(1), 1500 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := crypto.OpenKeyRing(filepath.Join(dir, tc.name, "keyring"), tc.master, tc.width)
			if (err == nil) != tc.ok {
				t.Fatalf("OpenKeyRing: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestKeyRingCorruptFile(t *testing.T) {
	r, path := newRing(t)
	mustSeal(t, r, t0, 1, []byte("x"))
	mustSeal(t, r, t0.Add(time.Hour), 1, []byte("y"))
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	open := func(t *testing.T, content []byte) error {
		t.Helper()
		p := filepath.Join(t.TempDir(), "keyring")
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := crypto.OpenKeyRing(p, testMaster(1), time.Hour)
		return err
	}
	if err := open(t, good); err != nil {
		t.Fatalf("a copy of a good file: %v", err)
	}
	for _, tc := range []struct {
		name    string
		content []byte
		want    string
	}{
		{"empty", nil, "bad header"},
		{"not a ring", []byte("SQLite format 3\x00" + strings.Repeat("\x00", 100)), "bad header"},
		{"future version", append([]byte("HERALDKR\x02"), good[9:]...), "version 2"},
		{"truncated", good[:len(good)-1], "does not authenticate"},
		{"entry dropped", append(bytes.Clone(good[:21]), good[21+68:]...), "does not authenticate"},
		{"extended", append(bytes.Clone(good), 0), "does not authenticate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := open(t, tc.content)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "keyring") {
				t.Fatalf("OpenKeyRing: %v; want an error naming the file and saying %q", err, tc.want)
			}
		})
	}
	t.Run("every byte flipped", func(t *testing.T) {
		for i := range good {
			bad := bytes.Clone(good)
			bad[i] ^= 0x40
			if err := open(t, bad); err == nil {
				t.Fatalf("byte %d flipped: opened", i)
			}
		}
	})
	t.Run("wrong master key", func(t *testing.T) {
		_, err := crypto.OpenKeyRing(path, testMaster(2), time.Hour)
		if err == nil || !strings.Contains(err.Error(), "master key") {
			t.Fatalf("OpenKeyRing: %v, want an error naming the master key", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "keyring")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(1 << 30); err != nil { // sparse: nothing is really written
			t.Fatal(err)
		}
		f.Close()
		if _, err := crypto.OpenKeyRing(p, testMaster(1), time.Hour); err == nil || !strings.Contains(err.Error(), "larger") {
			t.Fatalf("OpenKeyRing: %v, want a size error", err)
		}
	})
	t.Run("a directory", func(t *testing.T) {
		if _, err := crypto.OpenKeyRing(t.TempDir(), testMaster(1), time.Hour); err == nil {
			t.Fatal("opened a directory as a key ring")
		}
	})
}

func TestKeyRingRemovesLeftoverTemp(t *testing.T) {
	_, path := newRing(t)
	if err := os.WriteFile(path+".tmp", []byte("wrapped keys from a crashed write"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := crypto.OpenKeyRing(path, testMaster(1), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("leftover temporary file still there: %v", err)
	}
}

// TestKeyRingConcurrent runs sealers, openers and a sweeper together (run
// it with -race). Whatever the interleaving, a value either opens to what
// was sealed or is reported expired — and only if the sweeper had already
// been asked to destroy its expiry.
func TestKeyRingConcurrent(t *testing.T) {
	r, path := newRing(t)
	var horizon atomic.Int64 // the latest time handed to DestroyBefore, set before the call
	horizon.Store(t0.Unix())

	var wg sync.WaitGroup
	errc := make(chan error, 100)
	fail := func(format string, args ...any) {
		select {
		case errc <- fmt.Errorf(format, args...):
		default:
		}
	}
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 300 {
				exp := time.Unix(horizon.Load(), 0).Add(time.Duration(rng.IntN(4*3600)) * time.Second)
				id := int64(g*1000 + i)
				pt := fmt.Appendf(nil, "g%d i%d", g, i)
				s, err := r.SealUntil(exp, id, pt)
				if errors.Is(err, crypto.ErrExpired) {
					if exp.Unix() > horizon.Load() {
						fail("SealUntil(%v) refused with horizon %d", exp, horizon.Load())
					}
					continue
				}
				if err != nil {
					fail("SealUntil: %v", err)
					return
				}
				got, err := r.Open(id, s)
				switch {
				case errors.Is(err, crypto.ErrExpired):
					if exp.Unix() > horizon.Load() {
						fail("value expiring %v reported expired with horizon %d", exp, horizon.Load())
					}
				case err != nil:
					fail("Open: %v", err)
				case !bytes.Equal(got, pt):
					fail("Open = %q, want %q", got, pt)
				}
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			h := horizon.Add(60)
			if _, err := r.DestroyBefore(time.Unix(h, 0)); err != nil {
				fail("DestroyBefore: %v", err)
				return
			}
			_ = r.Buckets()
		}
	})
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	// What is on disk matches what is in memory.
	r2, err := crypto.OpenKeyRing(path, testMaster(1), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Buckets() != r.Buckets() {
		t.Errorf("reopened ring has %d buckets, in memory %d", r2.Buckets(), r.Buckets())
	}
}

func ExampleKeyRing() {
	dir, _ := os.MkdirTemp("", "herald")
	defer os.RemoveAll(dir)
	master := make([]byte, crypto.KeySize) // use LoadOrCreateMasterKey in real code
	ring, err := crypto.OpenKeyRing(filepath.Join(dir, "keyring"), master, time.Hour)
	if err != nil {
		panic(err)
	}
	sentAt := time.Date(2030, 1, 1, 9, 15, 0, 0, time.UTC)
	sealed, _ := ring.SealUntil(sentAt.Add(30*time.Second), 42, []byte("gone soon"))

	pt, err := ring.Open(42, sealed)
	fmt.Println(string(pt), err)

	// The sweeper, at 10:00, destroys the bucket 09:00–10:00.
	n, _ := ring.DestroyBefore(time.Date(2030, 1, 1, 10, 0, 0, 0, time.UTC))
	_, err = ring.Open(42, sealed)
	fmt.Println(n, errors.Is(err, crypto.ErrExpired))
	// Output:
	// gone soon <nil>
	// 1 true
}

func FuzzOpen(f *testing.F) {
	r, err := crypto.OpenKeyRing(filepath.Join(f.TempDir(), "keyring"), testMaster(1), time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	s := mustSeal(f, r, t0, 1, []byte("seed"))
	old := mustSeal(f, r, t0.Add(-2*time.Hour), 1, []byte("expired"))
	if _, err := r.DestroyBefore(t0.Add(-time.Hour)); err != nil {
		f.Fatal(err)
	}
	f.Add(int64(1), s)
	f.Add(int64(1), old)
	f.Add(int64(2), s)
	f.Add(int64(0), []byte{})
	f.Add(int64(0), []byte{2})
	f.Fuzz(func(t *testing.T, id int64, b []byte) {
		pt, err := r.Open(id, b)
		switch {
		case err == nil:
			if id != 1 || !bytes.Equal(b, s) || string(pt) != "seed" {
				t.Fatalf("Open(%d, %x) = %q: forged", id, b, pt)
			}
		case !errors.Is(err, crypto.ErrCorrupt) && !errors.Is(err, crypto.ErrExpired):
			t.Fatalf("Open: unexpected error %v", err)
		}
	})
}

func FuzzRingFile(f *testing.F) {
	path := filepath.Join(f.TempDir(), "keyring")
	r, err := crypto.OpenKeyRing(path, testMaster(1), time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	empty, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	mustSeal(f, r, t0, 1, []byte("x"))
	mustSeal(f, r, t0.Add(time.Hour), 1, []byte("x"))
	two, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(empty)
	f.Add(two)
	f.Add([]byte("HERALDKR\x01"))
	f.Add([]byte{})
	// One file per fuzzing process, rewritten each time: a directory per
	// input would cost more than the parsing under test.
	p := filepath.Join(f.TempDir(), "fuzzed")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := crypto.OpenKeyRing(p, testMaster(1), time.Hour)
		if err != nil {
			return
		}
		// Whatever opened must be usable and must survive a rewrite.
		if _, err := r.DestroyBefore(t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := r.SealUntil(t0.Add(48*time.Hour), 1, []byte("x")); err != nil && !errors.Is(err, crypto.ErrExpired) {
			t.Fatal(err)
		}
	})
}

func BenchmarkSealUntil(b *testing.B) {
	r, _ := newRing(b)
	body := bytes.Repeat([]byte("m"), 200)
	mustSeal(b, r, t0, 1, body) // the bucket exists, as it does for all but the first message of an hour
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.SealUntil(t0, 1, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	r, _ := newRing(b)
	body := bytes.Repeat([]byte("m"), 200)
	s := mustSeal(b, r, t0, 1, body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Open(1, s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealUntilNewBucket is the cost of the first value of a bucket:
// a durable rewrite of the ring file (three fsyncs).
func BenchmarkSealUntilNewBucket(b *testing.B) {
	r, _ := newRing(b)
	body := bytes.Repeat([]byte("m"), 200)
	i := 0
	for b.Loop() {
		i++
		if _, err := r.SealUntil(t0.Add(time.Duration(i)*time.Hour), 1, body); err != nil {
			b.Fatal(err)
		}
	}
}
