package format

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// cases is the table the Go and the JavaScript formatters share.
type cases struct {
	Size    [][2]any `json:"size"`
	Count   [][4]any `json:"count"`
	Preview [][4]any `json:"preview"`
	Call    [][5]any `json:"call"`
}

func load(t *testing.T) cases {
	t.Helper()
	b, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var c cases
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Size) == 0 || len(c.Count) == 0 || len(c.Preview) == 0 || len(c.Call) == 0 {
		t.Fatal("testdata/cases.json has an empty table")
	}
	return c
}

func TestSize(t *testing.T) {
	for _, tc := range load(t).Size {
		if got := Size(int64(tc[0].(float64))); got != tc[1] {
			t.Errorf("Size(%v) = %q, want %q", tc[0], got, tc[1])
		}
	}
}

func TestCount(t *testing.T) {
	for _, tc := range load(t).Count {
		if got := Count(int64(tc[0].(float64)), tc[1].(string), tc[2].(string)); got != tc[3] {
			t.Errorf("Count(%v, %q, %q) = %q, want %q", tc[0], tc[1], tc[2], got, tc[3])
		}
	}
}

func TestPreview(t *testing.T) {
	for _, tc := range load(t).Preview {
		if got := Preview(tc[0].(string), tc[1].(string), tc[2].(bool)); got != tc[3] {
			t.Errorf("Preview(%q, %q, %v) = %q, want %q", tc[0], tc[1], tc[2], got, tc[3])
		}
	}
}

// TestJavaScriptMirror runs the web page's formatters (web/static/format.js)
// over the same table with node.
func TestJavaScriptMirror(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is not installed (.ci/run installs it)")
		}
		t.Skip("node is not installed")
	}
	out, err := exec.Command(node, "testdata/check.mjs").CombinedOutput()
	if err != nil {
		t.Fatalf("web/static/format.js disagrees with testdata/cases.json: %v\n%s", err, out)
	}
}

func TestCall(t *testing.T) {
	for _, c := range load(t).Call {
		got := Call(c[0].(bool), c[1].(bool), c[2].(string), int64(c[3].(float64)))
		if got != c[4].(string) {
			t.Errorf("Call(%v, %v, %v, %v) = %q, want %q", c[0], c[1], c[2], c[3], got, c[4])
		}
	}
}
