package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
	"github.com/heraldim/herald/format"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"golang.org/x/term"
)

// sendFile uploads path (resuming an earlier attempt at the same
// content) and sends it with an optional caption.
func sendFile(ctx context.Context, c *cli, path string, peer *pb.Peer, caption string, replyTo int64, ttl time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return herald.Errorf(herald.Invalid, "cannot read %s: %v", path, errors.Unwrap(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return herald.Errorf(herald.Invalid, "%s is not a regular file", path)
	}
	cl, _, err := c.connect(ctx, false, -1)
	if err != nil {
		return err
	}
	defer cl.Close()
	bar := c.progressBar("uploading " + filepath.Base(path))
	file, err := cl.UploadFile(ctx, f, st.Size(), client.UploadOptions{
		Name: filepath.Base(path), Progress: bar.update,
		Resume: &client.FileResume{Path: filepath.Join(c.home, "uploads.json")},
	})
	bar.done(err)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	m, err := cl.Send(cctx, &pb.SendRequest{Peer: peer, Text: caption, ReplyTo: replyTo, TtlMs: ttl.Milliseconds(), FileId: file.Id, RandomId: client.RandomID()})
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(messageJSON(m))
	}
	_, err = fmt.Fprintln(c.stdout, m.Id)
	return err
}

func cmdDownload(ctx context.Context, c *cli, args []string) error {
	p, err := parseArgs(args, flagSpec{values: []string{"o", "output"}})
	if err != nil {
		return err
	}
	if len(p.args) != 1 {
		return usageError{"usage: herald download FILE_ID [-o PATH]"}
	}
	id := p.args[0]
	cl, _, err := c.connect(ctx, false, -1)
	if err != nil {
		return err
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	info, err := cl.FileInfo(cctx, id)
	cancel()
	if err != nil {
		return err
	}
	out := p.vals["o"]
	if out == "" {
		out = p.vals["output"]
	}
	if out == "" {
		out = info.Name // the server cleaned it to a bare name
	}
	if st, err := os.Stat(out); err == nil && st.IsDir() {
		out = filepath.Join(out, info.Name)
	}
	// A partial download lives beside the target until it is whole and
	// checked, so an interrupted run never leaves a wrong file under the
	// real name.
	part := out + ".part"
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if have > info.Size {
		if err := f.Truncate(0); err != nil {
			return err
		}
		have, _ = f.Seek(0, io.SeekStart)
	}
	bar := c.progressBar("downloading " + info.Name)
	bar.update(have, info.Size)
	if have < info.Size {
		_, _, err = cl.DownloadRange(ctx, id, have, f, bar.update)
	}
	bar.done(err)
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != info.Sha256 {
		os.Remove(part)
		return herald.Errorf(herald.Internal, "the downloaded file's SHA-256 is %s, not %s; it was removed, run the download again", got, info.Sha256)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(part, out); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(map[string]any{"path": out, "file": fileJSON(info)})
	}
	_, err = fmt.Fprintln(c.stdout, out)
	return err
}

func cmdLink(ctx context.Context, c *cli, args []string) error {
	p, err := parseArgs(args, flagSpec{values: []string{"ttl"}})
	if err != nil {
		return err
	}
	if len(p.args) != 1 {
		return usageError{"usage: herald link FILE_ID [--ttl DURATION]"}
	}
	var ttl time.Duration
	if v, ok := p.vals["ttl"]; ok {
		if ttl, err = time.ParseDuration(v); err != nil || ttl <= 0 {
			return usageError{fmt.Sprintf("--ttl needs a duration like 10m or 1h, not %q", v)}
		}
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		url, exp, err := cl.FileLink(ctx, p.args[0], ttl)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(map[string]any{"url": url, "expires_at": exp.UTC().Format(time.RFC3339)})
		}
		_, err = fmt.Fprintln(c.stdout, url)
		return err
	})
}

// fileJSON is the file object of the CLI contract.
func fileJSON(f *pb.File) map[string]any {
	out := map[string]any{"id": f.Id, "name": f.Name, "size": f.Size, "mime": f.Mime, "kind": f.Kind, "sha256": f.Sha256}
	if f.Width > 0 && f.Height > 0 {
		out["width"], out["height"] = f.Width, f.Height
	}
	if f.DurationMs > 0 {
		out["duration"] = float64(f.DurationMs) / 1000
	}
	return out
}

func describeFile(f *pb.File) string {
	return fmt.Sprintf("[%s %s, %s, id %s]", f.Kind, f.Name, format.Size(f.Size), f.Id)
}

// progress draws a one-line bar on a terminal's stderr; elsewhere (a
// script's pipe) it stays silent, so output stays parseable.
type progress struct {
	w     io.Writer
	label string
	on    bool
	last  time.Time
	shown bool
}

func (c *cli) progressBar(label string) *progress {
	f, ok := c.stderr.(*os.File)
	return &progress{w: c.stderr, label: label, on: ok && term.IsTerminal(int(f.Fd()))}
}

func (p *progress) update(done, total int64) {
	if !p.on || total <= 0 || (time.Since(p.last) < 100*time.Millisecond && done != total) {
		return
	}
	p.last, p.shown = time.Now(), true
	const width = 30
	fill := int(done * width / total)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3d%% %s/%s ", p.label, strings.Repeat("#", fill), strings.Repeat(".", width-fill),
		done*100/total, format.Size(done), format.Size(total))
}

func (p *progress) done(err error) {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}
