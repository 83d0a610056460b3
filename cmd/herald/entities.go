package main

import (
	"os"
	"slices"
	"strings"
	"unicode/utf16"

	pb "github.com/heraldim/herald/proto/herald/v1"
	"golang.org/x/term"
)

// ansiFor is the terminal style of an entity type; types without one
// (mentions, hashtags, …) print as they are.
var ansiFor = map[string]string{
	"bold": "1", "italic": "3", "underline": "4", "strikethrough": "9", "spoiler": "2",
	"code": "36", "pre": "36", "text_link": "4;34", "url": "4;34", "blockquote": "3",
}

// styled renders a message's text with its entities (offsets in UTF-16
// units, as in the Bot API). With ansi it styles the spans for a terminal;
// either way a text link's address follows its text, since it is not in
// the text itself.
func styled(text string, es []*pb.MessageEntity, ansi bool) string {
	if len(es) == 0 {
		return text
	}
	u := utf16.Encode([]rune(text))
	cuts := []int{0, len(u)}
	for _, e := range es {
		a, b := int(e.Offset), int(e.Offset+e.Length)
		if a < 0 || b > len(u) || a >= b {
			continue // the server checks entities; a bad one is ignored, not trusted
		}
		cuts = append(cuts, a, b)
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	var out strings.Builder
	for i := 0; i+1 < len(cuts); i++ {
		a, b := cuts[i], cuts[i+1]
		var codes []string
		var links []string
		for _, e := range es {
			if int(e.Offset) <= a && b <= int(e.Offset+e.Length) {
				if c := ansiFor[e.Type]; c != "" {
					codes = append(codes, c)
				}
				if e.Type == "text_link" && int(e.Offset+e.Length) == b && e.Url != "" {
					links = append(links, e.Url)
				}
			}
		}
		seg := string(utf16.Decode(u[a:b]))
		if ansi && len(codes) > 0 {
			seg = "\x1b[" + strings.Join(codes, ";") + "m" + seg + "\x1b[0m"
		}
		out.WriteString(seg)
		for _, l := range links {
			out.WriteString(" (" + l + ")")
		}
	}
	return out.String()
}

// entitiesJSON is the entities of the CLI's message object: data beside
// the plain text, never markup in it.
func entitiesJSON(es []*pb.MessageEntity) []map[string]any {
	out := make([]map[string]any, 0, len(es))
	for _, e := range es {
		m := map[string]any{"type": e.Type, "offset": e.Offset, "length": e.Length}
		if e.Url != "" {
			m["url"] = e.Url
		}
		if e.Language != "" {
			m["language"] = e.Language
		}
		if e.UserId != 0 {
			m["user_id"] = e.UserId
		}
		out = append(out, m)
	}
	return out
}

// wantANSI says whether stdout is a terminal that takes styles.
func wantANSI(stdout any, getenv func(string) string) bool {
	f, ok := stdout.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
}
