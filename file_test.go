package herald_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/heraldim/herald"
)

func TestCleanFileName(t *testing.T) {
	cases := []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\me\film.mp4`, "film.mp4"},
		{"a\"b\r\nX-Injected: 1.txt", "abX-Injected: 1.txt"},
		{"", "file"},
		{"..", "file"},
		{"dir/", "file"},
		{"  spaced  ", "spaced"},
		{"\xff\xfename.txt", "name.txt"},
		{"отчёт.pdf", "отчёт.pdf"},
		{strings.Repeat("é", 200) + ".pdf", strings.Repeat("é", 127)},
	}
	for _, c := range cases {
		if got := herald.CleanFileName(c.in); got != c.want {
			t.Errorf("CleanFileName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzCleanFileName: whatever a client sends, the stored name is a bare,
// printable, valid UTF-8 name that fits a header and a file system.
func FuzzCleanFileName(f *testing.F) {
	for _, s := range []string{"report.pdf", "../x", "a\r\nb", "\x00", "é", `a\b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := herald.CleanFileName(in)
		if got == "" || len(got) > herald.MaxFileNameBytes || !utf8.ValidString(got) {
			t.Fatalf("CleanFileName(%q) = %q", in, got)
		}
		if strings.ContainsAny(got, "/\\\"\r\n\x00\x7f") || got == "." || got == ".." {
			t.Fatalf("CleanFileName(%q) = %q keeps a dangerous character", in, got)
		}
		for _, r := range got {
			if r < 0x20 {
				t.Fatalf("CleanFileName(%q) = %q keeps a control character", in, got)
			}
		}
	})
}
