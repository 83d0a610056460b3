package service

import (
	"strings"
	"testing"

	"github.com/heraldim/herald"
)

// FuzzMentionedNames: any text yields names that are substrings of it,
// each of word characters only, and never a panic.
func FuzzMentionedNames(f *testing.F) {
	for _, s := range []string{"hi @alice", "@bob_1, @carol!", "mail a@b.c", "@@x", "@", "@ab", "é@élan @ok_name"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, n := range MentionedNames(text) {
			if len(n) < 3 || !strings.Contains(text, "@"+n) {
				t.Fatalf("MentionedNames(%q) gave %q", text, n)
			}
			for i := 0; i < len(n); i++ {
				if !wordByte(n[i]) {
					t.Fatalf("name %q has a non-word byte", n)
				}
			}
		}
	})
}

// FuzzValidateEntities: whatever a client sends as formatting, the
// check answers with a kind and never lets an entity outside the text.
func FuzzValidateEntities(f *testing.F) {
	f.Add("hello world", "bold", 0, 5, "")
	f.Add("😀 x", "italic", 2, 1, "")
	f.Add("link", "text_link", 0, 4, "javascript:alert(1)")
	f.Add("x", "pre", -1, 3, "")
	f.Fuzz(func(t *testing.T, text, typ string, off, n int, url string) {
		e := herald.Entity{Type: typ, Offset: off, Length: n, URL: url}
		err := ValidateEntities([]herald.Entity{e}, text)
		if err != nil {
			if herald.ErrorKind(err) == "" {
				t.Fatalf("an error without a kind: %v", err)
			}
			return
		}
		if off < 0 || n <= 0 || off+n > utf16Len(text) {
			t.Fatalf("accepted %+v on %q", e, text)
		}
		if typ == "text_link" && !strings.HasPrefix(strings.ToLower(url), "http") && !strings.HasPrefix(strings.ToLower(url), "tg://") && !strings.HasPrefix(strings.ToLower(url), "mailto:") {
			t.Fatalf("accepted a link to %q", url)
		}
	})
}
