// Package tusstore keeps resumable uploads in progress for the tus
// protocol handler (github.com/tus/tusd/v2) on a blob.Store, encrypted:
// no byte of an upload is ever written in the clear.
//
// Every PATCH request becomes one part, an age-encrypted blob under a
// fresh key; the upload's state (its size, metadata and the parts with
// their keys) is one blob sealed with the server's master key. A request
// cut off midway still leaves a complete, authenticated part of what
// arrived, so the upload resumes from there. Because every part and the
// state live in the blob store, any node sharing it can take the next
// request (locks are per node; see docs/OPERATIONS.md).
package tusstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/blob"
	"github.com/heraldim/herald/crypto"
	"github.com/tus/tusd/v2/pkg/handler"
)

// Store implements tusd's DataStore and TerminaterDataStore.
type Store struct {
	blobs    blob.Store
	sealer   *crypto.Sealer
	onDelete func(ctx context.Context, id string)
	// MaxParts caps the parts of one upload (zero: DefaultMaxParts).
	MaxParts int
}

// DefaultMaxParts caps the parts of one upload. Every PATCH, and every
// interruption of one, makes a part, and each PATCH rewrites the state
// listing them all: unbounded, tiny PATCHes made the state too large to
// load, and the upload could then be neither resumed nor deleted. At
// the cap the state is under 300 KB.
const DefaultMaxParts = 4096

// minPart is the least a PATCH that does not finish its upload must
// announce; uploads so large that the cap would not hold them at that
// size need larger requests (minPartOf).
const minPart = 1 << 20

// maxState bounds the state blob the store reads.
const maxState = 1 << 20

func (s *Store) maxParts() int {
	if s.MaxParts > 0 {
		return s.MaxParts
	}
	return DefaultMaxParts
}

// minPartOf is the least a PATCH of an upload of size bytes must carry,
// unless it carries the rest: enough that a client sending requests of
// that size uses at most half the parts allowed.
func (s *Store) minPartOf(size int64) int64 {
	half := int64(max(s.maxParts()/2, 1))
	return max(minPart, (size+half-1)/half)
}

// Progress is where an upload stands.
type Progress struct {
	Owner        int64
	Size, Offset int64
	Parts        int
}

// Progress returns where upload id stands, or handler.ErrNotFound.
func (s *Store) Progress(ctx context.Context, id string) (Progress, error) {
	up, err := s.GetUpload(ctx, id)
	if err != nil {
		return Progress{}, err
	}
	st := up.(*upload).st
	return Progress{Owner: st.Owner, Size: st.Size, Offset: st.offset(), Parts: len(st.Parts)}, nil
}

// CheckPatch says whether a PATCH announcing length bytes (-1: not
// announced) may add to an upload that stands at p: a request that does
// not finish the upload must announce at least minPartOf its size, and
// the last part an upload may have must finish it.
func (s *Store) CheckPatch(p Progress, length int64) error {
	rest := p.Size - p.Offset
	if length >= rest {
		return nil
	}
	if p.Parts+1 >= s.maxParts() {
		return herald.Errorf(herald.Invalid, "this upload was sent in too many pieces (%d): send the rest (%d bytes) in one request, or delete it and start again", p.Parts, rest)
	}
	if min := s.minPartOf(p.Size); length >= 0 && length < min {
		return herald.Errorf(herald.Invalid, "each request of an upload must carry at least %.1f MiB, except the one that finishes it (this one announces %d bytes)", float64(min)/(1<<20), length)
	}
	return nil
}

// New returns a Store keeping uploads in blobs under "uploads/".
// onDelete (if not nil) is called after an upload's state is deleted, for
// whatever reason: made a file, cancelled, or swept.
func New(blobs blob.Store, sealer *crypto.Sealer, onDelete func(ctx context.Context, id string)) *Store {
	return &Store{blobs: blobs, sealer: sealer, onDelete: onDelete}
}

// NewID returns a fresh upload id, for a caller that must know it before
// the upload is created (to reserve its quota under it).
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// UseIn registers the store with a tusd composer.
func (s *Store) UseIn(c *handler.StoreComposer) {
	c.UseCore(s)
	c.UseTerminater(s)
}

type part struct {
	Offset int64  `json:"o"`
	Size   int64  `json:"n"`
	Key    []byte `json:"k"` // the part's age file key; the whole state is sealed
}

type state struct {
	Owner    int64             `json:"owner"`
	Size     int64             `json:"size"`
	MetaData map[string]string `json:"meta"`
	Parts    []part            `json:"parts"`
}

func (st *state) offset() int64 {
	var n int64
	for _, p := range st.Parts {
		n += p.Size
	}
	return n
}

func prefix(id string) string  { return "uploads/" + id + "/" }
func infoKey(id string) string { return prefix(id) + "info" }
func partKey(id string, off int64) string {
	return fmt.Sprintf("%s%016d", prefix(id), off)
}

// ValidID reports whether id has the form of an upload id (32 lowercase
// hex characters); only such ids ever reach the blob store.
func ValidID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// binding seals an upload's state to its id, so states cannot be swapped.
func binding(id string) int64 { return crypto.FileBinding("upload/" + id) }

type upload struct {
	s  *Store
	id string
	st state
}

// NewUpload implements handler.DataStore.
func (s *Store) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	if info.SizeIsDeferred {
		return nil, handler.NewError("INVALID_ARGUMENT", "the upload needs its length in advance (Upload-Length)", 400)
	}
	id := info.ID
	if id == "" || !ValidID(id) {
		id = NewID()
	}
	// The owner is the server's, not the client's, metadata: kept apart,
	// so HEAD never echoes it.
	meta := maps.Clone(info.MetaData)
	owner, err := strconv.ParseInt(meta[OwnerKey], 10, 64)
	if err != nil || owner <= 0 {
		return nil, fmt.Errorf("tusstore: upload without an owner")
	}
	delete(meta, OwnerKey)
	u := &upload{s: s, id: id, st: state{Owner: owner, Size: info.Size, MetaData: meta}}
	if err := u.save(ctx); err != nil {
		return nil, err
	}
	return u, nil
}

// GetUpload implements handler.DataStore.
func (s *Store) GetUpload(ctx context.Context, id string) (handler.Upload, error) {
	if !ValidID(id) {
		return nil, handler.ErrNotFound
	}
	obj, err := s.blobs.Open(ctx, infoKey(id))
	if errors.Is(err, blob.ErrNotFound) {
		return nil, handler.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	if obj.Size() > maxState {
		return nil, fmt.Errorf("tusstore: state of upload %s is %d bytes", id, obj.Size())
	}
	sealed := make([]byte, obj.Size())
	if _, err := obj.ReadAt(sealed, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	plain, err := s.sealer.Open(binding(id), sealed)
	if err != nil {
		return nil, fmt.Errorf("tusstore: state of upload %s: %w", id, err)
	}
	u := &upload{s: s, id: id}
	if err := json.Unmarshal(plain, &u.st); err != nil {
		return nil, fmt.Errorf("tusstore: state of upload %s: %w", id, err)
	}
	return u, nil
}

func (u *upload) save(ctx context.Context) error {
	plain, err := json.Marshal(u.st)
	if err != nil {
		return err
	}
	sealed := u.s.sealer.Seal(binding(u.id), plain)
	_, err = u.s.blobs.Put(ctx, infoKey(u.id), strings.NewReader(string(sealed)))
	return err
}

// WriteChunk implements handler.Upload. It stores what arrives as one
// encrypted part, even when the request breaks off: the part is closed
// and recorded with the bytes received, and the client resumes after it.
func (u *upload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	if offset != u.st.offset() {
		return 0, handler.ErrMismatchOffset
	}
	key := partKey(u.id, offset)
	// The part is stored even if the request's context ends: it holds
	// bytes the client sent, and the state must match what is stored.
	bg := context.WithoutCancel(ctx)
	pk, n, err := crypto.EncryptStream(src, true, func(ct io.Reader) error {
		_, err := u.s.blobs.Put(bg, key, ct)
		return err
	})
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, u.s.blobs.Delete(bg, key)
	}
	if len(u.st.Parts)+1 >= u.s.maxParts() && offset+n < u.st.Size {
		// The last part allowed must finish the upload. What arrived is
		// dropped: the client resumes from where it was.
		if err := u.s.blobs.Delete(bg, key); err != nil {
			return 0, err
		}
		return 0, handler.NewError("INVALID_ARGUMENT", "this upload was sent in too many pieces: send the rest in one request, or delete it and start again", 400)
	}
	u.st.Parts = append(u.st.Parts, part{Offset: offset, Size: n, Key: pk})
	if err := u.save(bg); err != nil {
		return 0, err
	}
	return n, nil
}

// GetInfo implements handler.Upload.
func (u *upload) GetInfo(ctx context.Context) (handler.FileInfo, error) {
	return handler.FileInfo{ID: u.id, Size: u.st.Size, Offset: u.st.offset(), MetaData: u.st.MetaData}, nil
}

// GetReader implements handler.Upload: the plaintext of every part in
// order, decrypted as it is read.
func (u *upload) GetReader(ctx context.Context) (io.ReadCloser, error) {
	return &reader{ctx: ctx, u: u}, nil
}

// FinishUpload implements handler.Upload; the work happens in the
// handler's pre-finish hook, which makes the upload a file.
func (u *upload) FinishUpload(ctx context.Context) error { return nil }

// AsTerminatableUpload implements handler.TerminaterDataStore.
func (s *Store) AsTerminatableUpload(up handler.Upload) handler.TerminatableUpload {
	return up.(*upload)
}

// Terminate implements handler.TerminatableUpload.
func (u *upload) Terminate(ctx context.Context) error {
	return u.s.Delete(ctx, u.id)
}

// Delete removes an upload's state and parts.
func (s *Store) Delete(ctx context.Context, id string) error {
	if !ValidID(id) {
		return handler.ErrNotFound
	}
	objs, err := s.blobs.List(ctx, prefix(id))
	if err != nil {
		return err
	}
	// The state first: an upload whose state is gone is gone, even if
	// deleting a part fails below (the abandoned-upload sweep gets it).
	if err := s.blobs.Delete(ctx, infoKey(id)); err != nil {
		return err
	}
	if s.onDelete != nil {
		s.onDelete(ctx, id)
	}
	for _, o := range objs {
		if err := s.blobs.Delete(ctx, o.Key); err != nil {
			return err
		}
	}
	return nil
}

// OwnerKey is the metadata key under which the upload handler hands the
// uploader's user id to NewUpload.
const OwnerKey = "herald-owner"

// Sweep deletes uploads not touched since before: abandoned partial
// uploads, and leftovers of ones already made into files.
func (s *Store) Sweep(ctx context.Context, before time.Time) (int, error) {
	objs, err := s.blobs.List(ctx, "uploads/")
	if err != nil {
		return 0, err
	}
	latest := map[string]time.Time{}
	for _, o := range objs {
		id, _, _ := strings.Cut(strings.TrimPrefix(o.Key, "uploads/"), "/")
		if o.Modified.After(latest[id]) {
			latest[id] = o.Modified
		}
	}
	n := 0
	for id, t := range latest {
		if t.Before(before) && ValidID(id) {
			if err := s.Delete(ctx, id); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// reader decrypts an upload's parts one after another.
type reader struct {
	ctx  context.Context
	u    *upload
	next int
	cur  io.Reader
	obj  blob.Object
}

func (r *reader) Read(p []byte) (int, error) {
	for {
		if r.cur != nil {
			n, err := r.cur.Read(p)
			if !errors.Is(err, io.EOF) {
				return n, err
			}
			r.obj.Close()
			r.cur, r.obj = nil, nil
			if n > 0 {
				return n, nil
			}
		}
		if r.next == len(r.u.st.Parts) {
			return 0, io.EOF
		}
		pt := r.u.st.Parts[r.next]
		r.next++
		obj, err := r.u.s.blobs.Open(r.ctx, partKey(r.u.id, pt.Offset))
		if err != nil {
			return 0, err
		}
		dec, err := crypto.DecryptFile(io.NewSectionReader(obj, 0, obj.Size()), pt.Key)
		if err != nil {
			obj.Close()
			return 0, err
		}
		r.cur, r.obj = dec, obj
	}
}

func (r *reader) Close() error {
	if r.obj != nil {
		return r.obj.Close()
	}
	return nil
}
