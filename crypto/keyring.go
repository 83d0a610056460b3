package crypto

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBucketWidth is the bucket width OpenKeyRing uses when given zero.
// An hour keeps the ring small (one key per hour of future expiries, about
// 170 for a week of TTLs) while bounding how long expired content stays
// decryptable: at most one width after its expiry.
const DefaultBucketWidth = time.Hour

// ringSealVersion is the first byte of a value sealed by a KeyRing. It
// differs from Sealer's version byte so a caller holding both kinds of
// value can tell them apart (see RingSealed).
const ringSealVersion = 2

// Layout of a ring-sealed value: version, bucket end, nonce, ciphertext.
const (
	ringHdrLen   = 1 + 8
	ringNonceLen = 12
	ringTagLen   = 16
	// RingOverhead is how many bytes SealUntil adds to a plaintext.
	RingOverhead = ringHdrLen + ringNonceLen + ringTagLen
)

// Layout of the ring file:
//
//	magic "HERALDKR" | version 1 | horizon int64 | count uint32 |
//	count × (end int64 | nonce 12 | wrapped key 32+16) |
//	nonce 12 | GMAC tag 16 over everything before it
//
// Integers are big-endian. The trailer is AES-GCM with an empty plaintext
// (GMAC, NIST SP 800-38D) under a key of its own derived from the master
// key, so the file cannot be truncated, edited, or spliced with entries
// from an older copy without the master key.
const (
	fileMagic      = "HERALDKR"
	fileVersion    = 1
	fileHdrLen     = len(fileMagic) + 1 + 8 + 4
	fileEntryLen   = 8 + 12 + KeySize + 16
	fileTrailerLen = 12 + 16
	// maxBuckets bounds the ring, and with it what OpenKeyRing reads, so
	// a wrong path cannot make it allocate without limit. It is ten years
	// of hourly buckets, or 69 days of one-minute ones; SealUntil refuses a
	// bucket beyond it rather than write a file that would not reopen.
	maxBuckets  = 100_000
	maxRingFile = fileHdrLen + maxBuckets*fileEntryLen + fileTrailerLen
)

// HKDF info strings: each key has one purpose, and neither equals the
// Sealer's body key.
const (
	kekInfo = "herald keyring key-encryption v1"
	macInfo = "herald keyring file mac v1"
)

// ErrExpired reports a value whose bucket key this ring has destroyed (or,
// from SealUntil, an expiry at or before the ring's destruction horizon):
// the content is gone by design, not damaged.
var ErrExpired = errors.New("crypto: sealed value has expired; its key was destroyed")

// KeyRing holds the keys for content that must become unreadable at a
// known time. Content is sealed under the key of the time bucket its
// expiry falls in; once a bucket has ended, DestroyBefore removes its key
// from memory and from the ring file, and every copy of that content —
// live database, WAL, an old backup of the database — becomes ciphertext
// that no key in the current ring opens (old copies of the ring file
// itself are another matter: see Backups).
//
// # What is kept where
//
// The ring lives in one file (conventionally DATA/keyring, mode 0600).
// Each bucket key is 32 random bytes, stored only wrapped: AES-256-GCM
// under a key-encryption key derived by HKDF-SHA-256 from the master key,
// with the bucket id as additional data. The file carries a version
// header, the destruction horizon, and a GMAC trailer under another
// master-derived key. Every change is written atomically: a temporary file
// beside it is written and fsynced, renamed over the ring, the directory
// is fsynced, and then the previous file's blocks are overwritten with
// zeros and fsynced through a handle opened before the rename.
//
// The overwrite comes after the rename, not before, so there is never a
// moment when a crash leaves no valid ring on disk (which would lose every
// live key). It is best effort: on ext4 with data=ordered it reaches the
// old blocks, but copy-on-write file systems (btrfs, ZFS), data=journal,
// snapshots, and SSD wear levelling can keep the old bytes. The guarantee
// does not rest on it. The guarantee is: once DestroyBefore returns, the
// bucket key exists in no ring file this process will ever write again.
//
// # Backups
//
// A ring file is a key. A copy of DATA/keyring taken while a bucket was
// live still holds that bucket wrapped, and with the master key it opens
// everything sealed under it — this package's tests show exactly that.
// Provable deletion therefore holds for an old copy of the database opened
// with the current ring (the backup test), and fails for an old
// copy of the ring plus the master key. Operators must do one of:
//
//   - exclude the keyring file from backups (a restore then loses the TTL
//     content it held, which was meant to vanish anyway); or
//   - keep the master key out of the data directory and out of the
//     backups (-master-key-file), and rotate it (Rewrap) on a schedule,
//     destroying each old key: a backed-up ring copy becomes useless at
//     the next rotation, which bounds how long expired content in that
//     backup stays recoverable by someone who later obtains the live key.
//
// The default layout puts master.key in the data directory; a backup of
// the whole directory then contains everything needed to read TTL content
// that was live when it was taken. Say so in the operations guide.
//
// # Time
//
// Bucket ids are Unix seconds of the bucket's END (not its start): the end
// is the only time that matters, because it is when the key is destroyed.
// Keying by end means changing the configured width between runs is safe —
// old buckets keep their end, and no bucket is ever destroyed before the
// content sealed into it expires. Buckets are aligned to the Unix epoch.
//
// The ring has no clock. DestroyBefore(t) advances its horizon to t (to
// the second, persisted with the next write); SealUntil refuses expiries
// at or before the horizon with ErrExpired, because their bucket may
// already be gone and a fresh key for it would be destroyed by the next
// sweep while the caller still relies on it. The caller (the service's
// sweeper) supplies the clock; a clock that jumps forward destroys keys
// early (content lost, never leaked) and makes SealUntil refuse expiries
// before the jump.
//
// # Master-key rotation
//
//  1. Stop the server (one process owns the ring; there is no file lock).
//  2. Generate the new master key into a new file.
//  3. Open the ring with the old master key and call Rewrap(newKey). The
//     file is replaced atomically; no sealed value changes.
//  4. Re-seal every Sealer-sealed body: Sealer keys derive directly from the
//     master key, so each row must be opened with NewSealer(old) and sealed
//     with NewSealer(new). That needs a store method that walks and
//     rewrites bodies; it does not exist yet.
//  5. Replace the master key file with the new key, start the server, and
//     destroy the old key and any backup that holds it.
//
// A crash after step 3 leaves a ring that the old key no longer opens;
// OpenKeyRing then fails with an error naming the master key, and the
// operator finishes step 5.
//
// A KeyRing is safe for concurrent use. Open and SealUntil into an
// existing bucket take no lock; creating or destroying buckets is
// serialised and does file I/O.
type KeyRing struct {
	path  string
	width int64 // seconds

	// shared, when set, keeps the ring in storage that several nodes share
	// instead of the file at path; version is the stored version this
	// node's state came from (see OpenSharedKeyRing).
	shared  RingStorage
	version int64

	mu  sync.Mutex // serialises writers: creation, destruction, rewrap
	kek cipher.AEAD
	mac cipher.AEAD

	state atomic.Pointer[ringState]
}

// ringState is an immutable snapshot: readers load it without locking,
// writers build a new one and publish it only after it is on disk.
type ringState struct {
	horizon int64 // no live bucket has end <= horizon
	buckets map[int64]*bucket
}

type bucket struct {
	end     int64
	key     []byte // raw key, kept for Rewrap; zeroed on destroy
	wrapped []byte // nonce || wrapped key, as in the file
	aead    cipher.AEAD
}

// OpenKeyRing opens the ring file at path, or creates an empty one (mode
// 0600, directory 0700) if it does not exist. master is the server master
// key; width is the bucket width, a whole number of seconds (zero means
// DefaultBucketWidth). A file that is damaged, or was written under
// another master key, is an error: a server must not start and silently
// treat every live TTL message as expired.
func OpenKeyRing(path string, master []byte, width time.Duration) (*KeyRing, error) {
	r, err := newKeyRing(master, width)
	if err != nil {
		return nil, err
	}
	r.path = path

	// A temporary file left by a crash holds wrapped keys that may since
	// have been destroyed; it was never the ring, so remove it.
	if err := scrubRemove(path + ".tmp"); err != nil {
		return nil, fmt.Errorf("crypto: key ring %s: remove leftover temporary file: %w", path, err)
	}
	b, err := readLimited(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("crypto: key ring %s: %w", path, err)
		}
		st := &ringState{buckets: map[int64]*bucket{}}
		if err := r.write(st); err != nil {
			return nil, err
		}
		r.state.Store(st)
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("crypto: key ring %s: %w", path, err)
	}
	st, err := r.parse(b)
	if err != nil {
		return nil, fmt.Errorf("crypto: key ring %s: %w", path, err)
	}
	r.state.Store(st)
	return r, nil
}

// RingStorage keeps a key ring's encoded state where several nodes share
// it (a table in the shared database). The state is already wrapped and
// authenticated under keys derived from the master key; storage sees no
// raw key.
type RingStorage interface {
	// LoadRing returns the stored ring and its version, or nil and 0 if
	// none is stored yet.
	LoadRing(ctx context.Context) (data []byte, version int64, err error)
	// SaveRing replaces the stored ring with data if its version is still
	// prev (0: none stored yet) and returns the new version; ok is false,
	// and nothing is written, when another node changed it first.
	SaveRing(ctx context.Context, data []byte, prev int64) (version int64, ok bool, err error)
}

// errConflict reports that another node changed a shared ring first.
var errConflict = errors.New("crypto: the shared key ring changed underneath")

// storageTimeout bounds one round trip to shared ring storage.
const storageTimeout = 15 * time.Second

// OpenSharedKeyRing opens a key ring kept in shared storage, creating an
// empty one if none is stored, for several nodes that share a database
// and a master key. Each node keeps the keys it has used in memory;
// writers use compare-and-swap on the stored version, so nodes that
// create or destroy buckets at the same moment never overwrite each
// other: the loser reloads and retries. A node that meets a value sealed
// under a bucket it does not know reloads the ring before calling it
// corrupt, and every node destroys ended buckets in memory on its own
// sweep, so a key dies on every node within one sweep of its end.
//
// Deletion is as final as the storage's: a database keeps deleted rows
// until it vacuums them, and its write-ahead log and backups keep them
// longer. See docs/OPERATIONS.md.
func OpenSharedKeyRing(storage RingStorage, master []byte, width time.Duration) (*KeyRing, error) {
	r, err := newKeyRing(master, width)
	if err != nil {
		return nil, err
	}
	r.path, r.shared = "shared", storage
	r.state.Store(&ringState{buckets: map[int64]*bucket{}})
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reloadLocked(); err != nil {
		return nil, err
	}
	if r.version == 0 {
		err := r.persist(r.state.Load())
		if errors.Is(err, errConflict) {
			err = r.reloadLocked() // another node created it first
		}
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

// reloadLocked replaces the in-memory state with the shared one. The
// horizon never moves back: buckets this node destroyed stay destroyed.
func (r *KeyRing) reloadLocked() error {
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	data, v, err := r.shared.LoadRing(ctx)
	if err != nil {
		return fmt.Errorf("crypto: load shared key ring: %w", err)
	}
	cur := r.state.Load()
	if data == nil {
		r.version = 0
		return nil
	}
	st, err := r.parse(data)
	if err != nil {
		return fmt.Errorf("crypto: shared key ring: %w", err)
	}
	if cur != nil && cur.horizon > st.horizon {
		st.horizon = cur.horizon
		for end := range st.buckets {
			if end <= st.horizon {
				delete(st.buckets, end)
			}
		}
	}
	r.version = v
	r.state.Store(st)
	return nil
}

// persist makes st durable: in the ring file, or in shared storage if
// the stored version is still the one this node last saw (errConflict
// if not).
func (r *KeyRing) persist(st *ringState) error {
	if r.shared == nil {
		return r.write(st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	v, ok, err := r.shared.SaveRing(ctx, r.encode(st), r.version)
	if err != nil {
		return fmt.Errorf("crypto: save shared key ring: %w", err)
	}
	if !ok {
		return errConflict
	}
	r.version = v
	return nil
}

// maxConflicts bounds compare-and-swap retries; each one means another
// node made progress, so running out means something is wrong.
const maxConflicts = 20

// newKeyRing checks the arguments both kinds of ring take and derives
// the ring's keys.
func newKeyRing(master []byte, width time.Duration) (*KeyRing, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("crypto: master key must be %d bytes, got %d", KeySize, len(master))
	}
	if width == 0 {
		width = DefaultBucketWidth
	}
	if width < time.Second || width%time.Second != 0 {
		return nil, fmt.Errorf("crypto: key ring bucket width %v is not a positive whole number of seconds", width)
	}
	kek, mac, err := ringKeys(master)
	if err != nil {
		return nil, err
	}
	return &KeyRing{width: int64(width / time.Second), kek: kek, mac: mac}, nil
}

func ringKeys(master []byte) (kek, mac cipher.AEAD, err error) {
	if kek, err = deriveAEAD(master, kekInfo); err != nil {
		return nil, nil, err
	}
	if mac, err = deriveAEAD(master, macInfo); err != nil {
		return nil, nil, err
	}
	return kek, mac, nil
}

func deriveAEAD(master []byte, info string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, master, nil, info, 32)
	if err != nil {
		return nil, err
	}
	return newGCM(key)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if fi.Size() > int64(maxRingFile) {
		return nil, fmt.Errorf("file is larger than %d bytes; not a key ring", maxRingFile)
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(maxRingFile)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxRingFile {
		return nil, fmt.Errorf("file is larger than %d bytes; not a key ring", maxRingFile)
	}
	return b, nil
}

// SealUntil encrypts plaintext so that it can be opened until at least
// expiresAt and by no one once the bucket containing expiresAt has been
// destroyed (at most one bucket width later). It uses the bucket whose end
// is the first bucket boundary at or after expiresAt, creating that bucket
// and writing the ring durably first if it is new, so a value returned
// never depends on a key that a crash could lose. The result is bound to
// id like Sealer.Seal: it opens only with the same id.
//
// An expiry at or before the ring's horizon (the latest time given to
// DestroyBefore) returns an error matching ErrExpired: the caller should
// treat that content as already deleted.
func (r *KeyRing) SealUntil(expiresAt time.Time, id int64, plaintext []byte) ([]byte, error) {
	end, err := r.bucketEnd(expiresAt)
	if err != nil {
		return nil, err
	}
	st := r.state.Load()
	if ceilUnix(expiresAt) <= st.horizon {
		return nil, fmt.Errorf("%w: expiry %s is not after the last destruction (%s)", ErrExpired, expiresAt.UTC().Format(time.RFC3339), time.Unix(st.horizon, 0).UTC().Format(time.RFC3339))
	}
	b := st.buckets[end]
	if b == nil {
		if b, err = r.create(expiresAt, end); err != nil {
			return nil, err
		}
	}
	out := make([]byte, ringHdrLen+ringNonceLen, ringHdrLen+ringNonceLen+len(plaintext)+ringTagLen)
	out[0] = ringSealVersion
	binary.BigEndian.PutUint64(out[1:ringHdrLen], uint64(end))
	nonce := out[ringHdrLen : ringHdrLen+ringNonceLen]
	rand.Read(nonce)
	ad := ringAD(out[:ringHdrLen], id)
	return b.aead.Seal(out, nonce, plaintext, ad[:]), nil
}

// ringAD binds a value to its header (version and bucket) and to id.
func ringAD(hdr []byte, id int64) [ringHdrLen + 8]byte {
	var ad [ringHdrLen + 8]byte
	copy(ad[:], hdr)
	binary.BigEndian.PutUint64(ad[ringHdrLen:], uint64(id))
	return ad
}

// ceilUnix is t in Unix seconds rounded up, so comparisons with whole
// second bucket ends never let a fraction of a second fall on the wrong
// side.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// maxEnd keeps bucket arithmetic far from int64 overflow (it is around
// the year 292 billion; any real expiry is far below it).
const maxEnd = 1 << 62

func (r *KeyRing) bucketEnd(expiresAt time.Time) (int64, error) {
	s := ceilUnix(expiresAt)
	if s <= 0 || s > maxEnd-r.width {
		return 0, fmt.Errorf("crypto: expiry %v is out of range", expiresAt)
	}
	return (s + r.width - 1) / r.width * r.width, nil
}

// create adds the bucket ending at end, unless a concurrent caller did,
// and returns it once the ring file holding it is durable.
func (r *KeyRing) create(expiresAt time.Time, end int64) (*bucket, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for range maxConflicts {
		st := r.state.Load()
		// The horizon may have moved while we waited for the lock.
		if ceilUnix(expiresAt) <= st.horizon {
			return nil, fmt.Errorf("%w: expiry %s is not after the last destruction", ErrExpired, expiresAt.UTC().Format(time.RFC3339))
		}
		if b := st.buckets[end]; b != nil {
			return b, nil
		}
		if len(st.buckets) >= maxBuckets {
			return nil, fmt.Errorf("crypto: key ring holds %d buckets, its limit; use a wider bucket or shorter expiries", maxBuckets)
		}
		key := make([]byte, KeySize)
		rand.Read(key)
		b, err := newBucket(end, key)
		if err != nil {
			return nil, err
		}
		b.wrapped = r.wrap(end, key)
		next := &ringState{horizon: st.horizon, buckets: maps.Clone(st.buckets)}
		next.buckets[end] = b
		err = r.persist(next)
		if errors.Is(err, errConflict) {
			// Another node changed the ring, perhaps creating this
			// very bucket: take its state and look again.
			if err := r.reloadLocked(); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		r.state.Store(next)
		return b, nil
	}
	return nil, fmt.Errorf("crypto: the shared key ring kept changing; gave up after %d tries", maxConflicts)
}

func newBucket(end int64, key []byte) (*bucket, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return &bucket{end: end, key: key, aead: aead}, nil
}

// wrap seals a bucket key under kek, bound to its bucket id so a wrapped
// key cannot be moved to another bucket in the file.
func (r *KeyRing) wrap(end int64, key []byte) []byte {
	out := make([]byte, 12, 12+KeySize+16)
	rand.Read(out)
	return r.kek.Seal(out, out[:12], key, wrapAD(end))
}

func wrapAD(end int64) []byte {
	var ad [9]byte
	ad[0] = fileVersion
	binary.BigEndian.PutUint64(ad[1:], uint64(end))
	return ad[:]
}

// RingSealed reports whether sealed has the format of a KeyRing value
// rather than a Sealer value, so a caller storing both in one column can
// send each to the right Open.
func RingSealed(sealed []byte) bool {
	return len(sealed) > 0 && sealed[0] == ringSealVersion
}

// Open decrypts a value sealed by SealUntil with the same id. It returns
// ErrExpired if the value's bucket is at or before the ring's horizon (its
// key was destroyed), and ErrCorrupt if the value was tampered with, is
// bound to another id, or names a bucket this ring never had (for example
// a value from another server, or from before the ring file was replaced).
func (r *KeyRing) Open(id int64, sealed []byte) ([]byte, error) {
	if len(sealed) < RingOverhead || sealed[0] != ringSealVersion {
		return nil, ErrCorrupt
	}
	end := int64(binary.BigEndian.Uint64(sealed[1:ringHdrLen]))
	if end <= 0 || end > maxEnd {
		return nil, ErrCorrupt
	}
	st := r.state.Load()
	b := st.buckets[end]
	if b == nil && end > st.horizon && r.shared != nil {
		// Another node may have made this bucket since this one loaded.
		r.mu.Lock()
		if st = r.state.Load(); st.buckets[end] == nil {
			if err := r.reloadLocked(); err != nil {
				r.mu.Unlock()
				return nil, err
			}
		}
		st = r.state.Load()
		b = st.buckets[end]
		r.mu.Unlock()
	}
	if b == nil {
		if end <= st.horizon {
			return nil, ErrExpired
		}
		return nil, ErrCorrupt
	}
	ad := ringAD(sealed[:ringHdrLen], id)
	pt, err := b.aead.Open(nil, sealed[ringHdrLen:ringHdrLen+ringNonceLen], sealed[ringHdrLen+ringNonceLen:], ad[:])
	if err != nil {
		return nil, ErrCorrupt
	}
	return pt, nil
}

// DestroyBefore destroys every bucket whose end is at or before t and
// raises the ring's horizon to t (to the second). The ring file is
// rewritten durably before the keys stop working in memory, so when it
// returns with destroyed > 0 and a nil error, no ring file this process
// writes holds those keys, and every value sealed under them is
// unreadable here and in any copy of the data opened with this ring.
//
// If err is non-nil and destroyed is zero, nothing changed and the call
// may be retried. If both are non-zero, the keys were destroyed but the
// old file's bytes could not be overwritten (see the KeyRing comment).
// When no bucket ends by t the file is not rewritten: the raised horizon
// then lives in memory and reaches disk with the next change, which is
// enough because no key exists below it.
func (r *KeyRing) DestroyBefore(t time.Time) (destroyed int, err error) {
	h := t.Unix() // floor: a bucket ending at second e is over once t >= e
	r.mu.Lock()
	defer r.mu.Unlock()
	for range maxConflicts {
		st := r.state.Load()
		if h <= st.horizon {
			return 0, nil
		}
		var doomed []*bucket
		for end, b := range st.buckets {
			if end <= h {
				doomed = append(doomed, b)
			}
		}
		next := &ringState{horizon: h, buckets: st.buckets}
		if len(doomed) == 0 {
			r.state.Store(next)
			return 0, nil
		}
		next.buckets = maps.Clone(st.buckets)
		for _, b := range doomed {
			delete(next.buckets, b.end)
		}
		err = r.persist(next)
		if errors.Is(err, errConflict) {
			// Another node changed the ring (perhaps destroying these
			// very buckets): take its state and look again.
			if err := r.reloadLocked(); err != nil {
				return 0, err
			}
			continue
		}
		if err != nil && !errors.Is(err, errScrub) {
			return 0, err
		}
		r.state.Store(next)
		for _, b := range doomed {
			// Best effort: the AES key schedule inside b.aead cannot be
			// cleared, and the garbage collector may have copied either.
			clear(b.key)
		}
		return len(doomed), err
	}
	return 0, fmt.Errorf("crypto: the shared key ring kept changing; gave up after %d tries", maxConflicts)
}

// Buckets reports how many bucket keys are live, for tests and metrics.
func (r *KeyRing) Buckets() int {
	return len(r.state.Load().buckets)
}

// Rewrap re-wraps every bucket key and re-authenticates the ring file
// under a new master key, replacing the file atomically. Sealed values do
// not change. From then on this KeyRing writes under the new key, and
// OpenKeyRing needs the new key to open the file. See "Master-key
// rotation" in the KeyRing comment for the procedure around it.
func (r *KeyRing) Rewrap(newMaster []byte) error {
	if len(newMaster) != KeySize {
		return fmt.Errorf("crypto: master key must be %d bytes, got %d", KeySize, len(newMaster))
	}
	kek, mac, err := ringKeys(newMaster)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.state.Load()
	next := &ringState{horizon: st.horizon, buckets: make(map[int64]*bucket, len(st.buckets))}
	oldKEK, oldMAC := r.kek, r.mac
	r.kek, r.mac = kek, mac
	for end, b := range st.buckets {
		nb := *b
		nb.wrapped = r.wrap(end, b.key)
		next.buckets[end] = &nb
	}
	// A failed scrub still leaves the new file in place, so the new keys
	// are the ones in force; any other failure leaves the old file. A
	// shared ring changed by another node is not rewrapped: stop the
	// other nodes first.
	if err = r.persist(next); err != nil && !errors.Is(err, errScrub) {
		r.kek, r.mac = oldKEK, oldMAC
		return err
	}
	r.state.Store(next)
	return err
}

// encode lays out st as a ring file, authenticated under r.mac.
func (r *KeyRing) encode(st *ringState) []byte {
	ends := slices.Sorted(maps.Keys(st.buckets))
	out := make([]byte, 0, fileHdrLen+len(ends)*fileEntryLen+fileTrailerLen)
	out = append(out, fileMagic...)
	out = append(out, fileVersion)
	out = binary.BigEndian.AppendUint64(out, uint64(st.horizon))
	out = binary.BigEndian.AppendUint32(out, uint32(len(ends)))
	for _, end := range ends {
		out = binary.BigEndian.AppendUint64(out, uint64(end))
		out = append(out, st.buckets[end].wrapped...)
	}
	nonce := make([]byte, 12)
	rand.Read(nonce)
	out = append(out, nonce...)
	return r.mac.Seal(out, nonce, nil, out[:len(out)-len(nonce)])
}

// parse checks and decodes a ring file. Every length is checked before it
// is used, and nothing is trusted before the trailer authenticates.
func (r *KeyRing) parse(b []byte) (*ringState, error) {
	if len(b) < fileHdrLen+fileTrailerLen || !bytes.Equal(b[:len(fileMagic)], []byte(fileMagic)) {
		return nil, errors.New("not a key ring file (bad header)")
	}
	if v := b[len(fileMagic)]; v != fileVersion {
		return nil, fmt.Errorf("key ring file version %d; this build reads version %d", v, fileVersion)
	}
	body, trailer := b[:len(b)-fileTrailerLen], b[len(b)-fileTrailerLen:]
	if _, err := r.mac.Open(nil, trailer[:12], trailer[12:], body); err != nil {
		return nil, errors.New("key ring file does not authenticate: it is damaged, or the master key is not the one it was written with")
	}
	p := len(fileMagic) + 1
	horizon := int64(binary.BigEndian.Uint64(b[p:]))
	n := binary.BigEndian.Uint32(b[p+8:])
	entries := body[fileHdrLen:]
	if n > maxBuckets || uint64(len(entries)) != uint64(n)*fileEntryLen || horizon < 0 || horizon > maxEnd {
		return nil, errors.New("key ring file is malformed")
	}
	st := &ringState{horizon: horizon, buckets: make(map[int64]*bucket, n)}
	for e := range slices.Chunk(entries, fileEntryLen) {
		end := int64(binary.BigEndian.Uint64(e))
		if end <= horizon || end > maxEnd || st.buckets[end] != nil {
			return nil, fmt.Errorf("key ring file is malformed (bucket %d)", end)
		}
		wrapped := bytes.Clone(e[8:])
		key, err := r.kek.Open(nil, wrapped[:12], wrapped[12:], wrapAD(end))
		if err != nil {
			return nil, fmt.Errorf("bucket key %d does not unwrap", end)
		}
		bk, err := newBucket(end, key)
		if err != nil {
			return nil, err
		}
		bk.wrapped = wrapped
		st.buckets[end] = bk
	}
	return st, nil
}

// errScrub marks a write that made the new ring durable but could not
// overwrite the old file's bytes.
var errScrub = errors.New("crypto: key ring replaced, but the old file could not be overwritten")

// write replaces the ring file with st. The rename makes the change
// atomic and the directory fsync makes it durable; only then is the old
// file, still open through old, overwritten — so a crash at any point
// leaves one complete ring on disk.
func (r *KeyRing) write(st *ringState) error {
	data := r.encode(st)
	tmp := r.path + ".tmp"
	if err := writeSynced(tmp, data); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("crypto: write key ring: %w", err)
	}
	old, err := os.OpenFile(r.path, os.O_WRONLY, 0)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		scrubRemove(tmp)
		return fmt.Errorf("crypto: write key ring: %w", err)
	}
	if old != nil {
		defer old.Close()
	}
	if err := os.Rename(tmp, r.path); err != nil {
		scrubRemove(tmp)
		return fmt.Errorf("crypto: write key ring: %w", err)
	}
	if err := syncDir(filepath.Dir(r.path)); err != nil {
		return fmt.Errorf("crypto: write key ring: sync directory: %w", err)
	}
	if old != nil {
		if err := scrub(old); err != nil {
			return fmt.Errorf("%w: %w", errScrub, err)
		}
	}
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// scrub overwrites an open file's bytes with zeros in place and fsyncs.
func scrub(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	zero := make([]byte, 32<<10)
	for off := int64(0); off < fi.Size(); off += int64(len(zero)) {
		n := min(int64(len(zero)), fi.Size()-off)
		if _, err := f.WriteAt(zero[:n], off); err != nil {
			return err
		}
	}
	return f.Sync()
}

// scrubRemove overwrites and removes path; a missing file is not an error.
func scrubRemove(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	serr := scrub(f)
	f.Close()
	return errors.Join(serr, os.Remove(path))
}

// Width returns the bucket width: the longest a key outlives the content
// sealed under it.
func (r *KeyRing) Width() time.Duration { return time.Duration(r.width) * time.Second }
