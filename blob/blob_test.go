package blob

import (
	"errors"
	"path"
	"strings"
	"testing"
)

func TestValidKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"files/abc123", true},
		{"uploads/xyz/0000000000001024", true},
		{"a", true},
		{"a.b_c-d/e", true},
		{"..a/b..", true},
		{".hidden", true},
		{strings.Repeat("a", MaxSegmentLen), true},
		{strings.Repeat("a/", MaxKeyLen/2-1) + "a", true},
		{"", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{"../x", false},
		{"a/../b", false},
		{"a/..", false},
		{"..", false},
		{".", false},
		{"a/./b", false},
		{"A", false},
		{"a b", false},
		{"a\\b", false},
		{"a:b", false},
		{"a\x00b", false},
		{"é", false},
		{strings.Repeat("a", MaxSegmentLen+1), false},
		{strings.Repeat("a/", MaxKeyLen/2) + "a", false},
	}
	for _, tc := range tests {
		err := ValidKey(tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("ValidKey(%q) = %v, want ok %v", tc.key, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidKey(%q) = %v, not ErrInvalidKey", tc.key, err)
		}
	}
}

func TestValidPrefix(t *testing.T) {
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"", true},
		{"files/", true},
		{"files", true},
		{"uploads/x", true},
		{"a/.", true}, // "a/.b" starts with it
		{"..", true},  // so does "..b"
		{strings.Repeat("a", MaxSegmentLen), true},
		{"/", false},
		{"/a", false},
		{"a//", false},
		{"../", false},
		{"a/../", false},
		{"./", false},
		{"A", false},
		{"a b", false},
	}
	for _, tc := range tests {
		err := ValidPrefix(tc.prefix)
		if (err == nil) != tc.ok {
			t.Errorf("ValidPrefix(%q) = %v, want ok %v", tc.prefix, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidPrefix(%q) = %v, not ErrInvalidKey", tc.prefix, err)
		}
	}
}

// FuzzValidKey checks that every key ValidKey accepts is a clean, relative
// path that stays below the directory it is joined to.
func FuzzValidKey(f *testing.F) {
	for _, s := range []string{"files/abc", "a/../b", "../x", "a//b", "/a", "a/", ".", "..a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if ValidKey(key) != nil {
			return
		}
		if path.Clean(key) != key || path.IsAbs(key) || key == ".." || strings.HasPrefix(key, "../") {
			t.Errorf("ValidKey accepted %q", key)
		}
		if !strings.HasPrefix(path.Join("/root", key), "/root/") {
			t.Errorf("ValidKey accepted %q, which leaves its directory", key)
		}
		if ValidPrefix(key) != nil {
			t.Errorf("ValidPrefix rejects the valid key %q", key)
		}
	})
}
