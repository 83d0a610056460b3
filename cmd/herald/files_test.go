package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLIFiles(t *testing.T) {
	srv := startServer(t)
	alice, bobby, carol := srv.newDevice(t), srv.newDevice(t), srv.newDevice(t)
	alice.ok(t, "signup", "alicef")
	bobby.ok(t, "signup", "bobbyf")
	carol.ok(t, "signup", "carolf")

	data := make([]byte, 9<<20+123) // two upload chunks
	rand.Read(data)
	sum := sha256.Sum256(data)
	path := filepath.Join(t.TempDir(), "report.pdf")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	id := parseID(t, "send --file", alice.ok(t, "send", "--file", path, "@bobbyf", "the", "report"))
	ms := messages(t, bobby.ok(t, "history", "@alicef", "--json"))
	if len(ms) != 1 || ms[0].ID != id || ms[0].Text != "the report" {
		t.Fatalf("history: %+v", ms)
	}
	type fileLine struct {
		File struct {
			ID     string `json:"id"`
			Name   string `json:"name"`
			Size   int64  `json:"size"`
			MIME   string `json:"mime"`
			SHA256 string `json:"sha256"`
			Kind   string `json:"kind"`
		} `json:"file"`
	}
	withFile := jsonLines[fileLine](t, bobby.ok(t, "history", "@alicef", "--json"))
	f := withFile[0].File
	if f.ID == "" || f.Name != "report.pdf" || f.Size != int64(len(data)) || f.SHA256 != hex.EncodeToString(sum[:]) || f.Kind != "document" {
		t.Fatalf("history --json file = %+v", f)
	}
	if out := bobby.ok(t, "history", "@alicef"); !strings.Contains(out, "report.pdf") || !strings.Contains(out, f.ID) {
		t.Errorf("history (text) does not show the file: %q", out)
	}

	// bobby downloads it; a partial file from an earlier try is resumed.
	dir := t.TempDir()
	out := filepath.Join(dir, "got.pdf")
	if err := os.WriteFile(out+".part", data[:3<<20], 0o600); err != nil {
		t.Fatal(err)
	}
	if printed := strings.TrimSpace(bobby.ok(t, "download", f.ID, "-o", out)); printed != out {
		t.Errorf("download printed %q, want the path %q", printed, out)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded file differs (err %v)", err)
	}
	if _, err := os.Stat(out + ".part"); !os.IsNotExist(err) {
		t.Errorf("the partial file was left behind: %v", err)
	}
	// A damaged partial download is caught by the checksum, not kept.
	bad := bytes.Clone(data[:1<<20])
	bad[100] ^= 0xff
	os.WriteFile(out+"2.part", bad, 0o600)
	bobby.fails(t, "INTERNAL", "download", f.ID, "-o", out+"2")
	if _, err := os.Stat(out + "2"); !os.IsNotExist(err) {
		t.Error("a file that failed its checksum was kept under its name")
	}

	// carol is not in the chat.
	carol.fails(t, "NOT_FOUND", "download", f.ID, "-o", filepath.Join(dir, "x"))

	// herald token + curl -r, as the README shows.
	token := strings.TrimSpace(bobby.ok(t, "token"))
	req, _ := http.NewRequest("GET", srv.url+"/v1/files/"+f.ID, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Range", "bytes=1000-1999")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || !bytes.Equal(part, data[1000:2000]) {
		t.Fatalf("range read: %d, %d bytes", resp.StatusCode, len(part))
	}

	// A link for a browser.
	var link struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal([]byte(bobby.ok(t, "--json", "link", f.ID)), &link); err != nil || !strings.Contains(link.URL, "/v1/files/"+f.ID+"?") {
		t.Fatalf("link --json: %+v %v", link, err)
	}
	resp, err = http.Get(link.URL)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(all, data) {
		t.Fatalf("link download: %d", resp.StatusCode)
	}

	// Bad input.
	alice.fails(t, "INVALID_ARGUMENT", "send", "--file", filepath.Join(dir, "missing.pdf"), "@bobbyf")
	alice.fails(t, "INVALID_ARGUMENT", "send", "--file", dir, "@bobbyf")
}
