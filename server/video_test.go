package server_test

import (
	"encoding/json"
	"github.com/heraldim/herald/internal/e2e"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/heraldim/herald/proto/herald/v1"
)

// browserTools finds node and Debian's Chromium and installs the browser
// tests' npm dependencies. Without them the browser tests skip on a
// developer's machine, and fail in CI, where .ci/run installs both.
func browserTools(t *testing.T) (e2eDir string) {
	t.Helper()
	_, errNode := exec.LookPath("node")
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	_, errChromium := os.Stat(chromium)
	if errNode != nil || errChromium != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("browser tests need node and %s (.ci/run installs them): %v %v", chromium, errNode, errChromium)
		}
		t.Skipf("no node or %s here; CI runs this test", chromium)
	}
	dir, err := filepath.Abs("../web/e2e")
	if err != nil {
		t.Fatal(err)
	}
	if err := e2e.Install(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestVideoStreamsAndSeeksInABrowser(t *testing.T) {
	dir := browserTools(t)
	n := startNode(t, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	clip, err := os.ReadFile("testdata/clip.webm") // 10 s, VP9, made with ffmpeg's test source
	if err != nil {
		t.Fatal(err)
	}
	f := upload(t, alice, "clip.webm", clip)
	if f.Kind != "video" {
		t.Fatalf("kind %q", f.Kind)
	}
	if _, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: to(bobby.user.name), FileId: f.Id, Text: "watch"}); err != nil {
		t.Fatal(err)
	}
	link, _, err := bobby.FileLink(ctxT(t), f.Id, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctxT(t), "node", "video.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "VIDEO_URL="+link)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the browser could not play and seek: %v\n%s", err, out)
	}
	var res struct {
		Duration, SeekedTo, After float64
		Ranges                    []string
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.Duration < 9.5 || res.SeekedTo < 4 || res.After <= res.SeekedTo {
		t.Fatalf("duration %.2f, seeked to %.2f, then at %.2f", res.Duration, res.SeekedTo, res.After)
	}
	ranged := false
	for _, r := range res.Ranges {
		ranged = ranged || strings.HasPrefix(r, "bytes=")
	}
	if !ranged {
		t.Fatalf("the browser never asked for a range: %v", res.Ranges)
	}
	t.Logf("played %.1f s clip, seeked to %.2f, advanced to %.2f; requests: %v", res.Duration, res.SeekedTo, res.After, res.Ranges)
}
