package main

import (
	"testing"

	pb "github.com/heraldim/herald/proto/herald/v1"
)

func TestStyled(t *testing.T) {
	ent := func(typ string, off, n int32, url string) *pb.MessageEntity {
		return &pb.MessageEntity{Type: typ, Offset: off, Length: n, Url: url}
	}
	for _, tc := range []struct {
		name, text string
		es         []*pb.MessageEntity
		ansi       bool
		want       string
	}{
		{"none", "plain", nil, true, "plain"},
		{"bold", "Ready? go", []*pb.MessageEntity{ent("bold", 0, 6, "")}, true, "\x1b[1mReady?\x1b[0m go"},
		{"bold without a terminal", "Ready? go", []*pb.MessageEntity{ent("bold", 0, 6, "")}, false, "Ready? go"},
		{"nested", "bold italic", []*pb.MessageEntity{ent("bold", 0, 11, ""), ent("italic", 5, 6, "")}, true, "\x1b[1mbold \x1b[0m\x1b[1;3mitalic\x1b[0m"},
		// Offsets count UTF-16 units: the emoji before the code span is two.
		{"utf-16 offsets", "😀 x = 1", []*pb.MessageEntity{ent("code", 3, 5, "")}, true, "😀 \x1b[36mx = 1\x1b[0m"},
		{"text link", "see docs now", []*pb.MessageEntity{ent("text_link", 4, 4, "https://example.org/")}, false, "see docs (https://example.org/) now"},
		{"out of range is ignored", "short", []*pb.MessageEntity{ent("bold", 3, 10, "")}, true, "short"},
	} {
		if got := styled(tc.text, tc.es, tc.ansi); got != tc.want {
			t.Errorf("%s: styled = %q, want %q", tc.name, got, tc.want)
		}
	}
}
