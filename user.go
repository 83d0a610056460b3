package herald

import (
	"strings"
	"time"
	"unicode/utf8"
)

// User is an account.
type User struct {
	ID          int64
	Username    string // lower case, unique
	DisplayName string
	CreatedAt   time.Time

	Role           string    // "" or RoleModerator
	SuspendedUntil time.Time // zero unless suspended
	SuspendReason  string

	IsBot bool // a bot account (see Bot); filled in by the service
}

// Suspended reports whether the account is suspended at t.
func (u User) Suspended(t time.Time) bool {
	return !u.SuspendedUntil.IsZero() && u.SuspendedUntil.After(t)
}

// Device is one logged-in client of a user. Its bearer token is known only
// to the device; the store keeps a hash.
type Device struct {
	ID        int64
	UserID    int64
	Name      string
	CreatedAt time.Time
	LastSeen  time.Time
}

// reservedPrefixes keep names that would let an account impersonate the
// operator or the software.
var reservedPrefixes = []string{"admin", "herald", "support", "telegram", "root", "system"}

// NormalizeUsername lower-cases name and strips one leading '@'.
func NormalizeUsername(name string) string {
	return strings.ToLower(strings.TrimPrefix(strings.TrimSpace(name), "@"))
}

// ValidateUsername applies Telegram's rules to an already normalised name:
// 5–32 characters of a–z, 0–9 and '_', starting with a letter, with no
// trailing or doubled '_', and not starting with a reserved word.
func ValidateUsername(name string) error {
	n := len(name)
	if n < MinUsernameRunes || n > MaxUsernameRunes {
		return Errorf(Invalid, "a username has 5 to 32 characters")
	}
	if name[0] < 'a' || name[0] > 'z' {
		return Errorf(Invalid, "a username starts with a letter")
	}
	for i := 0; i < n; i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '_':
			if i == n-1 || name[i+1] == '_' {
				return Errorf(Invalid, "a username cannot end with '_' or contain '__'")
			}
		default:
			return Errorf(Invalid, "a username holds only a-z, 0-9 and '_'")
		}
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(name, p) {
			return Errorf(Invalid, "usernames starting with %q are reserved", p)
		}
	}
	return nil
}

// ValidateName checks a free-text name (display name, title, device name):
// valid UTF-8, no control characters, at most max characters.
func ValidateName(what, s string, max int) error {
	if !utf8.ValidString(s) {
		return Errorf(Invalid, "the %s is not valid UTF-8", what)
	}
	if utf8.RuneCountInString(s) > max {
		return Errorf(Invalid, "the %s is longer than %d characters", what, max)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return Errorf(Invalid, "the %s contains control characters", what)
		}
	}
	return nil
}
