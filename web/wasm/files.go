//go:build js && wasm

package main

import (
	"context"
	"errors"
	"io"
	"syscall/js"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
)

// await waits for a JavaScript Promise from a goroutine. The goroutine
// blocks on a channel, which hands the event loop back to the browser
// until the Promise settles and its callback feeds the channel.
func await(p js.Value) (js.Value, error) {
	ok := make(chan js.Value, 1)
	bad := make(chan error, 1)
	then := js.FuncOf(func(_ js.Value, a []js.Value) any { ok <- arg(a, 0); return nil })
	catch := js.FuncOf(func(_ js.Value, a []js.Value) any {
		e := arg(a, 0)
		msg := "JavaScript error"
		if e.Type() == js.TypeObject || e.Type() == js.TypeString {
			msg = e.Call("toString").String()
		}
		bad <- errors.New(msg)
		return nil
	})
	defer then.Release()
	defer catch.Release()
	p.Call("then", then, catch)
	select {
	case v := <-ok:
		return v, nil
	case err := <-bad:
		return js.Undefined(), err
	}
}

// blobWindow is how much of a file blobReader holds at once: reads come
// in small pieces (hashing, then each chunk's request body), and one
// blob.slice().arrayBuffer() per piece would cost a Promise per 32 KB.
const blobWindow = 1 << 20

// blobReader is an io.ReadSeeker over a JavaScript Blob (a File from the
// picker). It reads through blob.slice(a, b).arrayBuffer(), a window at a
// time, so a file of any size is never held in memory whole: the SDK's
// upload reads it twice (to hash, then to send chunk by chunk) and seeks
// to where the server says to resume.
type blobReader struct {
	blob js.Value
	size int64
	off  int64

	win    []byte // the bytes at winOff
	winOff int64
}

func newBlobReader(blob js.Value) *blobReader {
	return &blobReader{blob: blob, size: int64(blob.Get("size").Float())}
}

// Read implements io.Reader.
func (b *blobReader) Read(p []byte) (int, error) {
	n, err := b.ReadAt(p, b.off)
	b.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// ReadAt implements io.ReaderAt.
func (b *blobReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= b.size {
		return 0, io.EOF
	}
	if off < b.winOff || off >= b.winOff+int64(len(b.win)) {
		end := min(off+blobWindow, b.size)
		buf, err := await(b.blob.Call("slice", float64(off), float64(end)).Call("arrayBuffer"))
		if err != nil {
			return 0, herald.Errorf(herald.Invalid, "cannot read the file: %v", err)
		}
		u8 := js.Global().Get("Uint8Array").New(buf)
		if cap(b.win) < u8.Length() {
			b.win = make([]byte, u8.Length())
		}
		b.win = b.win[:u8.Length()]
		js.CopyBytesToGo(b.win, u8)
		b.winOff = off
	}
	n := copy(p, b.win[off-b.winOff:])
	if off+int64(n) >= b.size {
		return n, io.EOF
	}
	return n, nil
}

// Seek implements io.Seeker.
func (b *blobReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += b.off
	case io.SeekEnd:
		offset += b.size
	}
	if offset < 0 {
		return 0, errors.New("seek before the start of the file")
	}
	b.off = offset
	return offset, nil
}

// localResume is the SDK's ResumeStore in localStorage: an upload cut off
// by a lost network, a closed tab or a reload continues where the server
// says it stopped when the same file is attached again. The keys are the
// SDK's (content SHA-256 and size); the values are upload URLs, which
// carry no token. Logout clears localStorage, and with it these.
type localResume struct{}

const resumePrefix = "herald.upload."

func (localResume) Get(key string) (string, bool) {
	v := js.Global().Get("localStorage").Call("getItem", resumePrefix+key)
	if v.Type() != js.TypeString {
		return "", false
	}
	return v.String(), true
}

func (localResume) Put(key, url string) error {
	js.Global().Get("localStorage").Call("setItem", resumePrefix+key, url)
	return nil
}

func (localResume) Delete(key string) error {
	js.Global().Get("localStorage").Call("removeItem", resumePrefix+key)
	return nil
}

// upload(file, onProgress(done, total)) uploads a File or Blob with the
// SDK's tus client and resolves with the File (protobuf JSON), ready for
// messages.send's file_id.
func (b *bridge) upload(args []js.Value) (any, error) {
	c, err := b.current()
	if err != nil {
		return nil, err
	}
	blob := arg(args, 0)
	if blob.Type() != js.TypeObject || blob.Get("slice").Type() != js.TypeFunction {
		return nil, herald.Errorf(herald.Invalid, "upload needs a File")
	}
	onProgress := arg(args, 1)
	r := newBlobReader(blob)
	opts := client.UploadOptions{Name: str(blob.Get("name")), Resume: localResume{}}
	if opts.Name == "" {
		opts.Name = "file"
	}
	if onProgress.Type() == js.TypeFunction {
		opts.Progress = func(done, total int64) { onProgress.Invoke(float64(done), float64(total)) }
	}
	// A large file on a slow line takes a while; the ceiling is only
	// there so a wedged upload ends with an error the page can show.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Hour)
	defer cancel()
	f, err := c.UploadFile(ctx, r, r.size, opts)
	if err != nil {
		return nil, err
	}
	return marshal(f), nil
}
