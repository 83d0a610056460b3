package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/blob"
	"github.com/heraldim/herald/crypto"
)

// Upload is a finished resumable upload, ready to become a file. The
// fields other than ID, Size and Open are the client's claims: SHA256 is
// checked, and the media dimensions are kept for videos and audio, which
// the server does not parse. The type is sniffed from the content.
type Upload struct {
	ID       string
	Name     string
	SHA256   string // hex; required
	Size     int64
	Width    int
	Height   int
	Duration time.Duration
	// Open returns the upload's plaintext from the start. FinishUpload
	// may call it more than once.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

func fileKey(id string) string  { return "files/" + id }
func thumbKey(id string) string { return "files/" + id + ".thumb" }

func (s *Service) blobsReady() error {
	if s.blobs == nil {
		return herald.Errorf(herald.Unavailable, "files are not available on this server")
	}
	return nil
}

// MaxFileSize is the largest file this server accepts.
func (s *Service) MaxFileSize() int64 { return s.maxFile }

// CheckUpload says whether the caller may store a file of size bytes
// now: the size limit, and the quota counting files and unfinished
// uploads. (A resumable upload reserves its bytes instead: ReserveUpload.)
func (s *Service) CheckUpload(ctx context.Context, c Caller, size int64) error {
	if err := s.checkSize(size); err != nil {
		return err
	}
	used, err := s.store.StorageUsed(ctx, c.UserID)
	if err != nil {
		return err
	}
	if used+size > s.quota {
		return s.overQuota(used)
	}
	return nil
}

// ReserveUpload checks an upload about to be created, as CheckUpload
// does, and counts its size against the caller's quota until it becomes
// a file or goes (ReleaseUpload): uploads started at once cannot together
// pass the quota that each fits alone.
func (s *Service) ReserveUpload(ctx context.Context, c Caller, id string, size int64) error {
	if err := s.checkSize(size); err != nil {
		return err
	}
	used, ok, err := s.store.ReserveUpload(ctx, id, c.UserID, size, s.now(), s.quota)
	if err != nil {
		return err
	}
	if !ok {
		return s.overQuota(used)
	}
	return nil
}

// ReleaseUpload stops counting upload id against its owner's quota.
func (s *Service) ReleaseUpload(ctx context.Context, id string) error {
	return s.store.ReleaseUpload(ctx, id)
}

// ReservationsBefore lists reservations made before the given time, for
// the sweep to release those whose upload is gone.
func (s *Service) ReservationsBefore(ctx context.Context, before time.Time) ([]string, error) {
	return s.store.ReservationsBefore(ctx, before, 1000)
}

func (s *Service) checkSize(size int64) error {
	if err := s.blobsReady(); err != nil {
		return err
	}
	if size < 0 {
		return herald.Errorf(herald.Invalid, "the upload needs its length in advance")
	}
	if size == 0 {
		return herald.Errorf(herald.Invalid, "the file is empty")
	}
	if size > s.maxFile {
		return herald.Errorf(herald.TooLarge, "a file is at most %s on this server, this one is %s", humanBytes(s.maxFile), humanBytes(size))
	}
	return nil
}

func (s *Service) overQuota(used int64) error {
	return herald.Errorf(herald.TooLarge, "this file would take your storage past its quota of %s (%s used, unfinished uploads included)", humanBytes(s.quota), humanBytes(used))
}

// FinishUpload turns a complete upload into a file: it streams the
// plaintext once, checking its SHA-256 against the client's, sniffing its
// type and encrypting it under a fresh key into the blob store, then makes
// a thumbnail for photos. A checksum mismatch stores nothing. Calling it
// again for the same upload returns the same file.
func (s *Service) FinishUpload(ctx context.Context, c Caller, up Upload) (herald.File, error) {
	if err := s.blobsReady(); err != nil {
		return herald.File{}, err
	}
	want, err := hex.DecodeString(up.SHA256)
	if err != nil || len(want) != sha256.Size {
		return herald.File{}, herald.Errorf(herald.Invalid, "the upload needs its SHA-256 as 64 hex digits")
	}
	if f, err := s.store.File(ctx, up.ID); err == nil {
		if f.OwnerID != c.UserID {
			return herald.File{}, herald.Errorf(herald.NotFound, "no such upload")
		}
		return withoutKey(f), nil
	} else if !herald.IsKind(err, herald.NotFound) {
		return herald.File{}, err
	}
	src, err := up.Open(ctx)
	if err != nil {
		return herald.File{}, herald.Wrap("service.FinishUpload", err)
	}
	defer src.Close()

	h := sha256.New()
	head := &prefix{max: 512}
	key, n, err := s.encryptTo(ctx, fileKey(up.ID), io.TeeReader(src, io.MultiWriter(h, head)))
	if err != nil {
		return herald.File{}, err
	}
	drop := func() { s.blobs.Delete(context.WithoutCancel(ctx), fileKey(up.ID)) }
	if n != up.Size {
		drop()
		return herald.File{}, herald.Errorf(herald.Invalid, "the upload has %d bytes, not the %d announced", n, up.Size)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		drop()
		return herald.File{}, herald.Errorf(herald.Invalid, "the file's SHA-256 is %x, not the %s given: it was damaged on the way; nothing was kept", got, strings.ToLower(up.SHA256))
	}
	sum := hex.EncodeToString(want)
	if prev, err := s.store.FileByHash(ctx, c.UserID, sum); err == nil && prev.Size == n {
		// The same person sent the same bytes before: keep one copy.
		// Never across people, which would tell one who has which file.
		drop()
		return withoutKey(prev), nil
	}
	f := herald.File{
		ID: up.ID, OwnerID: c.UserID, Name: herald.CleanFileName(up.Name), Size: n, SHA256: sum, Created: s.now(),
		Key: s.sealer.Seal(crypto.FileBinding(up.ID), key),
	}
	f.MIME, f.Kind = sniff(head.b)
	switch f.Kind {
	case herald.FileVideo, herald.FileAudio, herald.FileVoice:
		if up.Width >= 0 && up.Width <= 1<<15 && up.Height >= 0 && up.Height <= 1<<15 && up.Duration >= 0 && up.Duration < 1000*time.Hour {
			f.Width, f.Height, f.Duration = up.Width, up.Height, up.Duration
		}
	case herald.FilePhoto:
		s.photo(ctx, &f, up)
	}
	if err := s.store.CreateFile(ctx, f); err != nil {
		drop()
		s.blobs.Delete(context.WithoutCancel(ctx), thumbKey(f.ID))
		return herald.File{}, err
	}
	s.log.InfoContext(ctx, "file stored", "file", f.ID, "user", c.UserID, "size", f.Size, "kind", f.Kind)
	return withoutKey(f), nil
}

// encryptTo streams r, encrypted under a fresh file key, into the blob
// store at key, and returns the file key and the plaintext length.
func (s *Service) encryptTo(ctx context.Context, key string, r io.Reader) ([]byte, int64, error) {
	fk, n, err := crypto.EncryptStream(r, false, func(ct io.Reader) error {
		_, err := s.blobs.Put(ctx, key, ct)
		return err
	})
	if err != nil {
		return nil, 0, herald.Wrap("service.encryptTo", err)
	}
	return fk, n, nil
}

func withoutKey(f herald.File) herald.File {
	f.Key, f.SealedUntil = nil, time.Time{}
	return f
}

// prefix keeps the first max bytes written to it.
type prefix struct {
	b   []byte
	max int
}

func (p *prefix) Write(b []byte) (int, error) {
	if room := p.max - len(p.b); room > 0 {
		p.b = append(p.b, b[:min(room, len(b))]...)
	}
	return len(b), nil
}

// sniff decides a file's type from its first bytes, as a browser would.
// The client's claim is not consulted: a file that says it is a photo and
// is not would otherwise be served as one.
func sniff(head []byte) (string, herald.FileKind) {
	if len(head) >= 12 && string(head[4:8]) == "ftyp" {
		// ISO media. The standard sniffer only knows brands starting
		// "mp4"; phones write isom, qt, 3gp and others.
		switch string(head[8:12]) {
		case "M4A ", "M4B ":
			return "audio/mp4", herald.FileAudio
		case "qt  ":
			return "video/quicktime", herald.FileVideo
		case "heic", "heix", "mif1", "avif":
			return "application/octet-stream", herald.FileDocument
		}
		return "video/mp4", herald.FileVideo
	}
	mime := http.DetectContentType(head)
	base, _, _ := strings.Cut(mime, ";")
	switch {
	case base == "image/jpeg", base == "image/png", base == "image/gif", base == "image/webp":
		return base, herald.FilePhoto
	case strings.HasPrefix(base, "video/"):
		return base, herald.FileVideo
	case base == "application/ogg":
		if bytes.Contains(head, []byte("OpusHead")) {
			return "audio/ogg", herald.FileVoice
		}
		if bytes.Contains(head, []byte("theora")) {
			return "video/ogg", herald.FileVideo
		}
		return "audio/ogg", herald.FileAudio
	case strings.HasPrefix(base, "audio/"):
		return base, herald.FileAudio
	case base == "application/pdf", base == "application/zip", base == "application/x-gzip":
		return base, herald.FileDocument
	case strings.HasPrefix(base, "text/"):
		// Text is shown as text, never run as a page: text/html from an
		// upload would script the server's own origin.
		return "text/plain; charset=utf-8", herald.FileDocument
	}
	return "application/octet-stream", herald.FileDocument
}

// attachable returns the file a new message may carry: one the caller can
// read (their own upload, or one sent to a chat they are in — forwarding
// a file needs no new upload).
func (s *Service) attachable(ctx context.Context, c Caller, id string) (herald.File, error) {
	if err := s.blobsReady(); err != nil {
		return herald.File{}, err
	}
	f, err := s.readable(ctx, c.UserID, id)
	if err != nil {
		return herald.File{}, err
	}
	return f, nil
}

// readable returns a file userID may read, with its sealed key. Everyone
// else is told it does not exist, whether or not it does.
func (s *Service) readable(ctx context.Context, userID int64, id string) (herald.File, error) {
	if !validFileID(id) {
		return herald.File{}, herald.Errorf(herald.NotFound, "no such file")
	}
	ok, err := s.store.CanReadFile(ctx, userID, id)
	if err == nil && !ok && s.secret != nil {
		// An encrypted attachment of a secret message: no chat on the
		// server carries it, the sender granted it to the recipient.
		ok, err = s.secret.FileGranted(ctx, userID, id)
	}
	if err != nil {
		return herald.File{}, err
	}
	if !ok {
		return herald.File{}, herald.Errorf(herald.NotFound, "no such file")
	}
	return s.store.File(ctx, id)
}

// validFileID accepts the ids uploads are given: lowercase hex, 32
// characters. Anything else is not a file, and cannot name a blob path.
func validFileID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// bindFile ties the key of the file m carries to m's lifetime. A file
// sent first with a self-destructing message is resealed under the key
// ring until the message's end, so it dies with it; a file also carried
// by a message without a timer stays under the master key.
func (s *Service) bindFile(ctx context.Context, m *herald.Message) error {
	f, err := s.store.File(ctx, m.File.ID)
	if err != nil {
		return err
	}
	until := m.ExpiresAt // for a waiting timer: the latest it can end
	switch {
	case until.IsZero():
		if f.SealedUntil.IsZero() {
			return nil
		}
	case !f.SealedUntil.IsZero() && !f.SealedUntil.Before(until):
		return nil
	case f.SealedUntil.IsZero():
		refs, err := s.store.FileRefs(ctx, f.ID)
		if err != nil || refs > 0 {
			return err // already lives on in a message without a timer
		}
	}
	key, err := s.fileKeyOf(f)
	if err != nil {
		return err
	}
	bind := crypto.FileBinding(f.ID)
	var sealed []byte
	if until.IsZero() {
		sealed = s.sealer.Seal(bind, key)
	} else {
		if s.ring == nil {
			return herald.Errorf(herald.Unavailable, "self-destructing messages are not available on this server")
		}
		if sealed, err = s.ring.SealUntil(until, bind, key); err != nil {
			return herald.Wrap("service.bindFile", err)
		}
	}
	return s.store.ResealFile(ctx, f.ID, sealed, until)
}

// fileKeyOf opens a file's sealed key. A key whose ring bucket is gone
// means the file is gone.
func (s *Service) fileKeyOf(f herald.File) ([]byte, error) {
	bind := crypto.FileBinding(f.ID)
	var key []byte
	var err error
	if crypto.RingSealed(f.Key) && s.ring != nil {
		key, err = s.ring.Open(bind, f.Key)
	} else {
		key, err = s.sealer.Open(bind, f.Key)
	}
	if errors.Is(err, crypto.ErrExpired) {
		return nil, herald.Errorf(herald.NotFound, "no such file")
	}
	if err != nil {
		return nil, herald.Wrap("service.fileKey", err)
	}
	return key, nil
}

// FileInfo returns a file's metadata to someone who may read it.
func (s *Service) FileInfo(ctx context.Context, c Caller, id string) (herald.File, error) {
	f, err := s.readable(ctx, c.UserID, id)
	return withoutKey(f), err
}

// FileReader is random access to a file's plaintext.
type FileReader struct {
	herald.File
	io.ReaderAt
	io.Closer
}

// OpenFile opens a file for reading by someone who may read it; thumb
// asks for the photo's thumbnail instead.
func (s *Service) OpenFile(ctx context.Context, c Caller, id string, thumb bool) (*FileReader, error) {
	if err := s.blobsReady(); err != nil {
		return nil, err
	}
	f, err := s.readable(ctx, c.UserID, id)
	if err != nil {
		return nil, err
	}
	key, err := s.fileKeyOf(f)
	if err != nil {
		return nil, err
	}
	bk := fileKey(id)
	if thumb {
		return s.openThumb(ctx, f, key)
	}
	obj, err := s.blobs.Open(ctx, bk)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, herald.Errorf(herald.NotFound, "no such file")
	}
	if err != nil {
		return nil, herald.Wrap("service.OpenFile", err)
	}
	ra, size, err := crypto.DecryptFileAt(obj, obj.Size(), key)
	if err != nil {
		obj.Close()
		return nil, herald.Wrap("service.OpenFile", err)
	}
	f = withoutKey(f)
	f.Size = size
	return &FileReader{File: f, ReaderAt: ra, Closer: obj}, nil
}

func (s *Service) openThumb(ctx context.Context, f herald.File, key []byte) (*FileReader, error) {
	if !f.Thumb {
		return nil, herald.Errorf(herald.NotFound, "this file has no thumbnail")
	}
	obj, err := s.blobs.Open(ctx, thumbKey(f.ID))
	if errors.Is(err, blob.ErrNotFound) {
		return nil, herald.Errorf(herald.NotFound, "this file has no thumbnail")
	}
	if err != nil {
		return nil, herald.Wrap("service.openThumb", err)
	}
	defer obj.Close()
	sealed := make([]byte, obj.Size())
	if _, err := obj.ReadAt(sealed, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, herald.Wrap("service.openThumb", err)
	}
	jpg, err := crypto.OpenWithFileKey(key, "thumb", sealed)
	if err != nil {
		return nil, herald.Wrap("service.openThumb", err)
	}
	t := withoutKey(f)
	t.Name, t.MIME, t.Size, t.Kind = "thumb.jpg", "image/jpeg", int64(len(jpg)), herald.FilePhoto
	return &FileReader{File: t, ReaderAt: bytes.NewReader(jpg), Closer: nopCloser{}}, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// DefaultLinkTTL is how long a signed download link works.
const DefaultLinkTTL = time.Hour

// SignFileLink returns the query string of a download link for a file
// that works without a token until it expires, so a browser's <video src>
// can stream it. It is bound to the caller: the server checks at every
// request that they may still read the file.
func (s *Service) SignFileLink(ctx context.Context, c Caller, id string, ttl time.Duration) (string, time.Time, error) {
	if ttl <= 0 || ttl > 24*time.Hour {
		ttl = DefaultLinkTTL
	}
	if _, err := s.readable(ctx, c.UserID, id); err != nil {
		return "", time.Time{}, err
	}
	exp := s.now().Add(ttl).Truncate(time.Second)
	sig := s.sealer.MAC(linkData(id, c.UserID, exp.Unix()))
	q := fmt.Sprintf("u=%d&exp=%d&sig=%s", c.UserID, exp.Unix(), base64.RawURLEncoding.EncodeToString(sig))
	return q, exp, nil
}

// LinkCaller checks a signed link's parameters and returns who it was
// signed for. A bad signature is NotFound (it tells nothing); an expired
// one is PermissionDenied.
func (s *Service) LinkCaller(id, user, exp, sig string) (Caller, error) {
	uid, err1 := strconv.ParseInt(user, 10, 64)
	e, err2 := strconv.ParseInt(exp, 10, 64)
	mac, err3 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || err3 != nil || !s.sealer.CheckMAC(linkData(id, uid, e), mac) {
		return Caller{}, herald.Errorf(herald.NotFound, "no such file")
	}
	if !time.Unix(e, 0).After(s.now()) {
		return Caller{}, herald.Errorf(herald.PermissionDenied, "this download link has expired; ask for a new one")
	}
	return Caller{UserID: uid}, nil
}

func linkData(id string, uid, exp int64) []byte {
	b := make([]byte, 0, 64)
	b = append(b, "herald file link\x00"...)
	b = append(b, id...)
	b = binary.BigEndian.AppendUint64(b, uint64(uid))
	return binary.BigEndian.AppendUint64(b, uint64(exp))
}

// fileMeta fills in the metadata of the file a delivered message
// carries; stores return only its id.
func (s *Service) fileMeta(ctx context.Context, m *herald.Message) {
	if m.File == nil || m.File.Name != "" {
		return
	}
	s.filesMu.RLock()
	f, ok := s.files[m.File.ID]
	s.filesMu.RUnlock()
	if !ok {
		var err error
		f, err = s.store.File(ctx, m.File.ID)
		if err != nil {
			s.log.WarnContext(ctx, "a message's file is missing", "chat", m.ChatID, "seq", m.Seq, "err", err)
			return
		}
		f = withoutKey(f)
		s.filesMu.Lock()
		if len(s.files) > 10000 {
			clear(s.files) // metadata never changes; this only bounds memory
		}
		s.files[f.ID] = f
		s.filesMu.Unlock()
	}
	m.File = &f
}

// sweepFiles deletes the files whose key is destroyed or that no message
// carries since their self-destructing messages went.
func (s *Service) sweepFiles(ctx context.Context) (int, error) {
	if s.blobs == nil {
		return 0, nil
	}
	n := 0
	for {
		fs, err := s.store.ExpiredFiles(ctx, s.now(), 500)
		if err != nil || len(fs) == 0 {
			return n, err
		}
		for _, f := range fs {
			if err := s.blobs.Delete(ctx, fileKey(f.ID)); err != nil {
				return n, herald.Wrap("service.sweepFiles", err)
			}
			if err := s.blobs.Delete(ctx, thumbKey(f.ID)); err != nil {
				return n, herald.Wrap("service.sweepFiles", err)
			}
			if err := s.store.DeleteFile(ctx, f.ID); err != nil {
				return n, err
			}
			s.filesMu.Lock()
			delete(s.files, f.ID)
			s.filesMu.Unlock()
			n++
		}
		if len(fs) < 500 {
			return n, nil
		}
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
