package herald

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on files. Telegram takes files up to 2 GB; the size limit and the
// per-user quota are the operator's to change (see server.Config).
const (
	DefaultMaxFileSize  = 2 << 30   // bytes in one file
	DefaultStorageQuota = 100 << 30 // bytes of files one user may own
	MaxCaptionRunes     = 1024      // characters in a file's caption
	MaxFileNameBytes    = 255       // bytes in a file's name, as on most file systems
	ThumbSize           = 320       // pixels on the long side of a photo's thumbnail
)

// FileKind is what a file is, as the server sniffed it from its bytes.
type FileKind string

// The kinds of file a message can carry.
const (
	FileDocument FileKind = "document"
	FilePhoto    FileKind = "photo"
	FileVideo    FileKind = "video"
	FileAudio    FileKind = "audio"
	FileVoice    FileKind = "voice"
)

// File is an uploaded file: metadata in the store, bytes in a blob store,
// encrypted under a key of its own. Key is that key, sealed; only the
// service opens it.
type File struct {
	ID       string // random and unguessable, but never relied on for secrecy
	OwnerID  int64  // the uploader
	Name     string
	Size     int64
	MIME     string // sniffed from the content, never the client's claim alone
	Kind     FileKind
	SHA256   string // hex of the plaintext's SHA-256
	Width    int    // photos and videos, where known
	Height   int
	Duration time.Duration // audio and video, where known
	Thumb    bool          // a JPEG thumbnail exists
	Created  time.Time

	// Key is the file's age file key sealed for storage; SealedUntil is
	// when the key it is sealed under is destroyed (zero: the master key),
	// as for message bodies.
	Key         []byte
	SealedUntil time.Time
}

// CleanFileName makes a client's file name safe to store and to put in a
// Content-Disposition header: the last path element only, no control
// characters, valid UTF-8, at most MaxFileNameBytes. An empty result
// becomes "file".
func CleanFileName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(name, "") {
		if r < 0x20 || r == 0x7f || r == '"' || (r >= 0x80 && r < 0xa0) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > MaxFileNameBytes {
			break
		}
		b.WriteRune(r)
	}
	s := strings.TrimSpace(b.String())
	if s == "" || s == "." || s == ".." {
		return "file"
	}
	return s
}

// ValidateCaption checks the text that goes with a file: like a message's,
// but it may be empty and has at most MaxCaptionRunes characters.
func ValidateCaption(s string) error {
	if s == "" {
		return nil
	}
	if !utf8.ValidString(s) {
		return Errorf(Invalid, "the caption is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > MaxCaptionRunes {
		return Errorf(TooLarge, "a caption has at most %d characters, this one has %d", MaxCaptionRunes, n)
	}
	return nil
}

// ParseSize reads a positive byte count with an optional binary unit, as
// operators write limits: 1048576, 500KiB, 20MiB, 2GiB, 1TiB.
func ParseSize(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	num := strings.TrimSpace(v)
	for _, u := range units {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, Errorf(Invalid, "%q is not a size like 2GiB, 500MiB or 1048576", v)
	}
	return n * mult, nil
}
