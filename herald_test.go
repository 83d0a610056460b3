package herald_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/heraldim/herald"
)

func TestValidateUsername(t *testing.T) {
	tests := []struct {
		name  string
		valid bool
	}{
		{"alice", true},
		{"bob_smith", true},
		{"a1234", true},
		{"x_y_z9", true},
		{strings.Repeat("a", 32), true},
		{"", false},
		{"abcd", false},                  // 4 characters
		{strings.Repeat("a", 33), false}, // 33 characters
		{"1alice", false},                // starts with a digit
		{"_alice", false},                // starts with '_'
		{"Alice", false},                 // not normalised
		{"alice_", false},                // trailing '_'
		{"al__ice", false},               // doubled '_'
		{"al-ice", false},                // '-'
		{"al.ice", false},                // '.'
		{"al ice", false},                // space
		{"alicé", false},                 // non-ASCII letter
		{"adminbob", false},              // reserved prefix
		{"heraldfan", false},             // reserved prefix
		{"support_team", false},          // reserved prefix
		{"telegram1", false},             // reserved prefix
		{"rootbeer", false},              // reserved prefix
		{"systemd", false},               // reserved prefix
		{"myadmin", true},                // reserved only as a prefix
		{"herbal", true},                 // not a reserved prefix
		{"ab" + strings.Repeat("_c", 15), true},
	}
	for _, tc := range tests {
		err := herald.ValidateUsername(tc.name)
		switch {
		case tc.valid && err != nil:
			t.Errorf("ValidateUsername(%q) = %v, want nil", tc.name, err)
		case !tc.valid && !herald.IsKind(err, herald.Invalid):
			t.Errorf("ValidateUsername(%q) = %v, want kind %s", tc.name, err, herald.Invalid)
		case !tc.valid && herald.ErrorMessage(err) == "internal error":
			t.Errorf("ValidateUsername(%q) gives no sentence for a person", tc.name)
		}
	}
}

func TestNormalizeUsername(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice", "alice"},
		{"Alice", "alice"},
		{"@Alice", "alice"},
		{"  @BoB_1 \n", "bob_1"},
		{"@@carol", "@carol"}, // one '@' only
		{"", ""},
	}
	for _, tc := range tests {
		if got := herald.NormalizeUsername(tc.in); got != tc.want {
			t.Errorf("NormalizeUsername(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestValidateText(t *testing.T) {
	tests := []struct {
		name string
		text string
		want herald.Kind // "" for valid
	}{
		{"simple", "hello", ""},
		{"one character", "x", ""},
		{"surrounded by blanks", "  hi\n", ""},
		{"emoji", "👋", ""},
		{"4096 ASCII", strings.Repeat("a", herald.MaxTextRunes), ""},
		{"4096 multi-byte runes", strings.Repeat("é", herald.MaxTextRunes), ""},
		{"empty", "", herald.Invalid},
		{"blank", " \t\r\n ", herald.Invalid},
		{"4097 ASCII", strings.Repeat("a", herald.MaxTextRunes+1), herald.TooLarge},
		{"4097 multi-byte runes", strings.Repeat("é", herald.MaxTextRunes+1), herald.TooLarge},
		{"bad UTF-8", "hi \xff", herald.Invalid},
		{"truncated UTF-8", "\xc3", herald.Invalid},
	}
	for _, tc := range tests {
		err := herald.ValidateText(tc.text)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: ValidateText = %v, want nil", tc.name, err)
			}
			continue
		}
		if !herald.IsKind(err, tc.want) {
			t.Errorf("%s: ValidateText = %v, want kind %s", tc.name, err, tc.want)
		}
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		s     string
		valid bool
	}{
		{"Alice Liddell", true},
		{"", true},
		{strings.Repeat("ж", 64), true},
		{strings.Repeat("ж", 65), false},
		{"tab\there", false},
		{"del\x7f", false},
		{"bad \xff", false},
	}
	for _, tc := range tests {
		err := herald.ValidateName("display name", tc.s, herald.MaxDisplayName)
		if tc.valid != (err == nil) || (!tc.valid && !herald.IsKind(err, herald.Invalid)) {
			t.Errorf("ValidateName(%q) = %v, want valid %v", tc.s, err, tc.valid)
		}
	}
}

func TestErrorKind(t *testing.T) {
	notFound := herald.Errorf(herald.NotFound, "no user @%s", "bob")
	cause := errors.New("open /var/lib/herald/db: permission denied")
	tests := []struct {
		name string
		err  error
		kind herald.Kind
		msg  string
	}{
		{"kind and sentence", notFound, herald.NotFound, "no user @bob"},
		{"wrapped with %w", fmt.Errorf("loading: %w", notFound), herald.NotFound, "no user @bob"},
		{"plain error", cause, herald.Internal, "internal error"},
		{"Wrap of a plain error", herald.Wrap("store.Open", cause), herald.Internal, "internal error"},
		{"Wrap keeps a kind", herald.Wrap("store.Open", notFound), herald.NotFound, "no user @bob"},
		{"Internal with a sentence", &herald.Error{Kind: herald.Internal, Msg: "query SELECT secret failed"}, herald.Internal, "internal error"},
		{"Unavailable without a sentence", &herald.Error{Kind: herald.Unavailable, Err: cause}, herald.Unavailable, "the server is temporarily unavailable, try again"},
		{"Unavailable with a sentence", herald.Errorf(herald.Unavailable, "shutting down"), herald.Unavailable, "shutting down"},
		{"rate limited", &herald.Error{Kind: herald.RateLimited, Msg: "slow down"}, herald.RateLimited, "slow down"},
	}
	for _, tc := range tests {
		if got := herald.ErrorKind(tc.err); got != tc.kind {
			t.Errorf("%s: ErrorKind = %s, want %s", tc.name, got, tc.kind)
		}
		if !herald.IsKind(tc.err, tc.kind) {
			t.Errorf("%s: IsKind(%s) = false", tc.name, tc.kind)
		}
		if got := herald.ErrorMessage(tc.err); got != tc.msg {
			t.Errorf("%s: ErrorMessage = %q, want %q", tc.name, got, tc.msg)
		}
	}
	if herald.IsKind(nil, herald.Internal) {
		t.Error("IsKind(nil, Internal) = true")
	}
	if err := herald.Wrap("op", nil); err != nil {
		t.Errorf("Wrap(nil) = %v, want nil", err)
	}
	wrapped := herald.Wrap("store.Open", cause)
	if !errors.Is(wrapped, cause) {
		t.Errorf("Wrap lost its cause: %v", wrapped)
	}
	if got, want := wrapped.Error(), "store.Open: INTERNAL: "+cause.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := (&herald.Error{Kind: herald.NotFound, Op: "op", Msg: "gone"}).Error(), "op: NOT_FOUND: gone"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
