package botapi

import (
	"html"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/heraldim/herald"
)

// Text formatting: parse_mode turns marked-up text into plain text plus
// entities, as the Bot API does, and messages from people get the
// entities bots route on. Offsets and lengths count UTF-16 code units,
// the Bot API's unit.

// u16 is the length of s in UTF-16 code units.
func u16(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

func isWordRune(r byte) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_'
}

// detectEntities finds bot commands (/start, /help@somebot), mentions
// (@name) and links (http:// and https://) in a person's text.
func detectEntities(text string) []herald.Entity {
	var out []herald.Entity
	for i := 0; i < len(text); {
		c := text[i]
		start := i
		boundary := i == 0 || !isWordRune(text[i-1]) && text[i-1] != '/' && text[i-1] != '@'
		switch {
		case c == '/' && boundary:
			j := i + 1
			for j < len(text) && isWordRune(text[j]) {
				j++
			}
			if j < len(text) && text[j] == '@' {
				k := j + 1
				for k < len(text) && isWordRune(text[k]) {
					k++
				}
				if k > j+1 {
					j = k
				}
			}
			if j > i+1 {
				out = append(out, herald.Entity{Type: "bot_command", Offset: u16(text[:start]), Length: u16(text[start:j])})
				i = j
				continue
			}
		case c == '@' && boundary:
			j := i + 1
			for j < len(text) && isWordRune(text[j]) {
				j++
			}
			if j-i-1 >= herald.MinUsernameRunes {
				out = append(out, herald.Entity{Type: "mention", Offset: u16(text[:start]), Length: u16(text[start:j])})
				i = j
				continue
			}
		case (c == 'h') && boundary && (strings.HasPrefix(text[i:], "http://") || strings.HasPrefix(text[i:], "https://")):
			j := i
			for j < len(text) && text[j] != ' ' && text[j] != '\n' && text[j] != '\t' {
				j++
			}
			for j > i && strings.ContainsRune(".,;:!?)'\"", rune(text[j-1])) {
				j--
			}
			out = append(out, herald.Entity{Type: "url", Offset: u16(text[:start]), Length: u16(text[start:j])})
			i = j
			continue
		}
		_, size := utf8.DecodeRuneInString(text[i:])
		i += size
	}
	return out
}

// parseError is the Bot API's sentence for text that does not parse.
func parseError(format string, args ...any) error {
	return badRequest("can't parse entities: "+format, args...)
}

// formatText applies parse_mode to text.
func formatText(text, mode string) (string, []herald.Entity, error) {
	if !utf8.ValidString(text) {
		// Markup removed between two stray bytes could join them into
		// a character, and move every offset after it.
		return "", nil, badRequest("text must be valid UTF-8")
	}
	switch strings.ToLower(mode) {
	case "":
		return text, nil, nil
	case "html":
		return parseHTML(text)
	case "markdownv2":
		return parseMarkdown(text, true)
	case "markdown":
		return parseMarkdown(text, false)
	}
	return "", nil, badRequest("unsupported parse_mode %q: use HTML, MarkdownV2 or Markdown", mode)
}

// builder accumulates plain text and entities.
type builder struct {
	b    strings.Builder
	n    int // UTF-16 length so far
	ents []herald.Entity
}

func (b *builder) write(s string) {
	b.b.WriteString(s)
	b.n += u16(s)
}

func (b *builder) add(e herald.Entity, start int) {
	e.Offset, e.Length = start, b.n-start
	if e.Length > 0 {
		b.ents = append(b.ents, e)
	}
}

func (b *builder) done() (string, []herald.Entity, error) {
	sort.SliceStable(b.ents, func(i, j int) bool { return b.ents[i].Offset < b.ents[j].Offset })
	return b.b.String(), b.ents, nil
}

var htmlTags = map[string]string{
	"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
	"s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "code": "code", "pre": "pre",
	"a": "text_link", "tg-spoiler": "spoiler", "span": "spoiler", "blockquote": "blockquote",
}

// parseHTML is the Bot API's HTML style: a fixed set of tags, and the
// entities &lt; &gt; &amp; &quot; (and numeric ones).
func parseHTML(text string) (string, []herald.Entity, error) {
	var b builder
	type open struct {
		tag   string
		start int
		ent   herald.Entity
	}
	var stack []open
	for i := 0; i < len(text); {
		switch text[i] {
		case '<':
			end := strings.IndexByte(text[i:], '>')
			if end < 0 {
				return "", nil, parseError("unclosed start tag at byte offset %d", i)
			}
			raw := text[i+1 : i+end]
			i += end + 1
			if strings.HasPrefix(raw, "/") {
				name := strings.ToLower(strings.TrimSpace(raw[1:]))
				if len(stack) == 0 || stack[len(stack)-1].tag != name {
					return "", nil, parseError("unmatched end tag %q", name)
				}
				o := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if o.ent.Type == "pre" && len(b.ents) > 0 {
					// <pre><code class="language-x"> is one pre entity
					// with a language, not two entities.
					last := &b.ents[len(b.ents)-1]
					if last.Type == "code" && last.Offset == o.start && last.Language != "" {
						o.ent.Language = last.Language
						b.ents = b.ents[:len(b.ents)-1]
					}
				}
				b.add(o.ent, o.start)
				continue
			}
			name, attrs, _ := strings.Cut(raw, " ")
			name = strings.ToLower(name)
			typ, ok := htmlTags[name]
			if !ok {
				return "", nil, parseError("unsupported start tag %q at byte offset %d", name, i-end-1)
			}
			e := herald.Entity{Type: typ}
			switch name {
			case "a":
				e.URL = attr(attrs, "href")
				if strings.HasPrefix(e.URL, "tg://user?id=") {
					e.Type = "text_mention"
				}
			case "span":
				if attr(attrs, "class") != "tg-spoiler" {
					return "", nil, parseError("a span needs class=\"tg-spoiler\"")
				}
			case "code":
				if l := attr(attrs, "class"); strings.HasPrefix(l, "language-") {
					e.Language = strings.TrimPrefix(l, "language-")
				}
			}
			stack = append(stack, open{tag: name, start: b.n, ent: e})
		case '&':
			end := strings.IndexByte(text[i:], ';')
			if end < 0 || end > 10 {
				b.write("&")
				i++
				continue
			}
			b.write(html.UnescapeString(text[i : i+end+1]))
			i += end + 1
		default:
			j := strings.IndexAny(text[i:], "<&")
			if j < 0 {
				j = len(text) - i
			}
			b.write(text[i : i+j])
			i += j
		}
	}
	if len(stack) > 0 {
		return "", nil, parseError("can't find end tag corresponding to start tag %q", stack[len(stack)-1].tag)
	}
	return b.done()
}

// attr reads one attribute's value from a tag's attribute text.
func attr(attrs, name string) string {
	i := strings.Index(attrs, name+"=")
	if i < 0 {
		return ""
	}
	v := attrs[i+len(name)+1:]
	if len(v) > 0 && (v[0] == '"' || v[0] == '\'') {
		q := v[0]
		if j := strings.IndexByte(v[1:], q); j >= 0 {
			return html.UnescapeString(v[1 : j+1])
		}
		return ""
	}
	if j := strings.IndexAny(v, " \t"); j >= 0 {
		v = v[:j]
	}
	return html.UnescapeString(v)
}

// mdReserved are MarkdownV2's characters that must be escaped outside
// markup.
const mdReserved = "_*[]()~`>#+-=|{}.!"

// parseMarkdown is the Bot API's MarkdownV2 (v2) or legacy Markdown style:
// *bold* _italic_ __underline__ ~strike~ ||spoiler|| `code` ```pre```
// [text](url); in v2 every reserved character outside markup is escaped
// with '\'.
func parseMarkdown(text string, v2 bool) (string, []herald.Entity, error) {
	var b builder
	type open struct {
		marker string
		start  int
		ent    herald.Entity
	}
	var stack []open
	top := func(m string) bool { return len(stack) > 0 && stack[len(stack)-1].marker == m }
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\\' && v2 && i+1 < len(text):
			_, size := utf8.DecodeRuneInString(text[i+1:])
			b.write(text[i+1 : i+1+size])
			i += 1 + size
		case strings.HasPrefix(text[i:], "```"):
			end := strings.Index(text[i+3:], "```")
			if end < 0 {
				return "", nil, parseError("can't find end of pre entity at byte offset %d", i)
			}
			body := text[i+3 : i+3+end]
			lang := ""
			if nl := strings.IndexByte(body, '\n'); nl >= 0 && !strings.ContainsAny(body[:nl], " \t") {
				lang, body = body[:nl], body[nl+1:]
			}
			start := b.n
			b.write(unescapeCode(body, v2))
			b.add(herald.Entity{Type: "pre", Language: lang}, start)
			i += 3 + end + 3
		case c == '`':
			end := strings.IndexByte(text[i+1:], '`')
			if end < 0 {
				return "", nil, parseError("can't find end of code entity at byte offset %d", i)
			}
			start := b.n
			b.write(unescapeCode(text[i+1:i+1+end], v2))
			b.add(herald.Entity{Type: "code"}, start)
			i += end + 2
		case c == '[':
			close := findUnescaped(text, i+1, ']', v2)
			if close < 0 || close+1 >= len(text) || text[close+1] != '(' {
				if v2 {
					return "", nil, parseError("character '[' is reserved and must be escaped with the preceding '\\'")
				}
				b.write("[")
				i++
				continue
			}
			paren := strings.IndexByte(text[close+2:], ')')
			if paren < 0 {
				return "", nil, parseError("can't find end of a URL at byte offset %d", close)
			}
			url := strings.ReplaceAll(text[close+2:close+2+paren], "\\)", ")")
			inner, ents, err := parseMarkdown(text[i+1:close], v2)
			if err != nil {
				return "", nil, err
			}
			start := b.n
			for _, e := range ents {
				e.Offset += start
				b.ents = append(b.ents, e)
			}
			b.write(inner)
			e := herald.Entity{Type: "text_link", URL: url}
			if strings.HasPrefix(url, "tg://user?id=") {
				e.Type = "text_mention"
			}
			b.add(e, start)
			i = close + 2 + paren + 1
		default:
			marker, typ := "", ""
			switch {
			case v2 && strings.HasPrefix(text[i:], "__"):
				marker, typ = "__", "underline"
			case v2 && strings.HasPrefix(text[i:], "||"):
				marker, typ = "||", "spoiler"
			case c == '*':
				marker, typ = "*", "bold"
			case c == '_':
				marker, typ = "_", "italic"
			case v2 && c == '~':
				marker, typ = "~", "strikethrough"
			}
			if marker != "" {
				if top(marker) {
					o := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					b.add(o.ent, o.start)
				} else {
					stack = append(stack, open{marker: marker, start: b.n, ent: herald.Entity{Type: typ}})
				}
				i += len(marker)
				continue
			}
			if v2 && strings.IndexByte(mdReserved, c) >= 0 {
				return "", nil, parseError("character '%c' is reserved and must be escaped with the preceding '\\'", c)
			}
			_, size := utf8.DecodeRuneInString(text[i:])
			b.write(text[i : i+size])
			i += size
		}
	}
	if len(stack) > 0 {
		return "", nil, parseError("can't find end of %s entity", stack[len(stack)-1].ent.Type)
	}
	return b.done()
}

// unescapeCode drops the '\' before '`' and '\' inside code, as
// MarkdownV2 asks there.
func unescapeCode(s string, v2 bool) string {
	if !v2 {
		return s
	}
	return strings.NewReplacer("\\`", "`", "\\\\", "\\").Replace(s)
}

func findUnescaped(s string, from int, c byte, v2 bool) int {
	for i := from; i < len(s); i++ {
		if v2 && s[i] == '\\' {
			i++
			continue
		}
		if s[i] == c {
			return i
		}
	}
	return -1
}
