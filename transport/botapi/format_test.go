package botapi

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/heraldim/herald"
)

func ents(es []herald.Entity) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%s@%d+%d", e.Type, e.Offset, e.Length)
		if e.URL != "" {
			b.WriteString("(" + e.URL + ")")
		}
		if e.Language != "" {
			b.WriteString("[" + e.Language + "]")
		}
		b.WriteString(" ")
	}
	return strings.TrimSpace(b.String())
}

func TestFormatText(t *testing.T) {
	for _, tc := range []struct {
		mode, in, text, ents, err string
	}{
		{"", "*as is*", "*as is*", "", ""},
		{"HTML", "<b>bold</b> and <i>it</i>", "bold and it", "bold@0+4 italic@9+2", ""},
		{"HTML", `<a href="https://x.org/?a=1&amp;b=2">link</a>`, "link", "text_link@0+4(https://x.org/?a=1&b=2)", ""},
		{"HTML", "1 &lt; 2 &amp;&amp; 3 &gt; 2", "1 < 2 && 3 > 2", "", ""},
		{"HTML", `<pre><code class="language-go">x := 1</code></pre>`, "x := 1", "pre@0+6[go]", ""},
		{"HTML", "😀<b>x</b>", "😀x", "bold@2+1", ""}, // UTF-16: the emoji is two units
		{"HTML", "<tg-spoiler>s</tg-spoiler><span class=\"tg-spoiler\">t</span>", "st", "spoiler@0+1 spoiler@1+1", ""},
		{"HTML", "<b>open", "", "", "can't find end tag"},
		{"HTML", "<blink>x</blink>", "", "", "unsupported start tag"},
		{"HTML", "<b>x</i>", "", "", "unmatched end tag"},
		{"MarkdownV2", "*bold* _it_ __u__ ~s~ ||sp||", "bold it u s sp", "bold@0+4 italic@5+2 underline@8+1 strikethrough@10+1 spoiler@12+2", ""},
		{"MarkdownV2", "[Herald](https://h.org) `c` done\\.", "Herald c done.", "text_link@0+6(https://h.org) code@7+1", ""},
		{"MarkdownV2", "```go\nfmt.Println()\n```", "fmt.Println()\n", "pre@0+14[go]", ""},
		{"MarkdownV2", "*nested _italic_*", "nested italic", "bold@0+13 italic@7+6", ""},
		{"MarkdownV2", "1.5", "", "", "reserved"},
		{"MarkdownV2", "*open", "", "", "can't find end"},
		{"Markdown", "*b* _i_ 1.5 [l](http://x)", "b i 1.5 l", "bold@0+1 italic@2+1 text_link@8+1(http://x)", ""},
		{"Klingon", "x", "", "", "unsupported parse_mode"},
	} {
		text, es, err := formatText(tc.in, tc.mode)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %q: error %v, want one containing %q", tc.mode, tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || text != tc.text || ents(es) != tc.ents {
			t.Errorf("%s %q = %q [%s] %v, want %q [%s]", tc.mode, tc.in, text, ents(es), err, tc.text, tc.ents)
		}
	}
}

func TestDetectEntities(t *testing.T) {
	for in, want := range map[string]string{
		"/start":                       "bot_command@0+6",
		"/start@herald_bot now":        "bot_command@0+17",
		"hi @alice_1, see https://x.y": "mention@3+8 url@17+11",
		"a/b and x@y.z":                "",
		"😀 /help":                      "bot_command@3+5",
		"@abc":                         "", // too short to be a username
	} {
		if got := ents(detectEntities(in)); got != want {
			t.Errorf("detectEntities(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzFormatText: no input crashes the parsers, and every entity they
// make lies inside the text they return.
func FuzzFormatText(f *testing.F) {
	for _, s := range []string{"<b>x</b>", "*a* _b_ [c](d)", "```go\nx```", "&amp;<a href='x'>y</a>", "\\*x\\*", "||s|| __u__"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, mode := range []string{"HTML", "MarkdownV2", "Markdown"} {
			text, es, err := formatText(in, mode)
			if err != nil {
				continue
			}
			if utf8.ValidString(in) && !utf8.ValidString(text) {
				t.Fatalf("%s %q gave invalid UTF-8 %q", mode, in, text)
			}
			n := u16(text)
			for _, e := range es {
				if e.Offset < 0 || e.Length <= 0 || e.Offset+e.Length > n {
					t.Fatalf("%s %q: entity %+v outside %d units of %q", mode, in, e, n, text)
				}
			}
		}
		for _, e := range detectEntities(in) {
			if e.Offset < 0 || e.Length <= 0 || e.Offset+e.Length > u16(in) {
				t.Fatalf("detectEntities(%q): %+v", in, e)
			}
		}
	})
}
