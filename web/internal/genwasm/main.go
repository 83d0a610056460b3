// Command genwasm builds the web client's WebAssembly and writes what
// package web embeds: static/herald.wasm.gz and static/herald.wasm.br (the
// same module, gzip -9 and Brotli quality 11, for browsers that accept
// either) and the matching static/wasm_exec.js from the Go installation
// that built it. Run it with
// `go generate ./web`. With -check it writes nothing and fails if the
// committed files differ from a fresh build, which is how CI notices a
// client/ or web/wasm change whose wasm was not rebuilt.
//
// Only the gzipped wasm is committed: the build is reproducible
// (-trimpath, no build id, no timestamps), so comparing the decompressed
// bytes is exact, and the repository and heraldd carry a quarter of the
// raw size.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/andybalholm/brotli"
)

func main() {
	check := flag.Bool("check", false, "compare with the committed files instead of writing them")
	dir := flag.String("dir", ".", "the web package's directory")
	flag.Parse()
	if err := run(*dir, *check); err != nil {
		fmt.Fprintln(os.Stderr, "genwasm:", err)
		os.Exit(1)
	}
}

func run(dir string, check bool) error {
	wasm, err := build(dir)
	if err != nil {
		return err
	}
	execJS, err := wasmExec()
	if err != nil {
		return err
	}
	gzPath := filepath.Join(dir, "static", "herald.wasm.gz")
	brPath := filepath.Join(dir, "static", "herald.wasm.br")
	jsPath := filepath.Join(dir, "static", "wasm_exec.js")
	if check {
		old, err := gunzipFile(gzPath)
		if err != nil {
			return fmt.Errorf("%s: %w (run go generate ./web)", gzPath, err)
		}
		if !bytes.Equal(old, wasm) {
			return fmt.Errorf("%s is stale: a fresh build differs (%d bytes, committed %d); run go generate ./web and commit the result", gzPath, len(wasm), len(old))
		}
		oldBr, err := unbrotliFile(brPath)
		if err != nil {
			return fmt.Errorf("%s: %w (run go generate ./web)", brPath, err)
		}
		if !bytes.Equal(oldBr, wasm) {
			return fmt.Errorf("%s is stale: a fresh build differs; run go generate ./web and commit the result", brPath)
		}
		oldJS, err := os.ReadFile(jsPath)
		if err != nil || !bytes.Equal(oldJS, execJS) {
			return fmt.Errorf("%s does not match this Go's lib/wasm/wasm_exec.js; run go generate ./web", jsPath)
		}
		fmt.Printf("herald.wasm is current: %d bytes, %d gzipped\n", len(wasm), fileSize(gzPath))
		return nil
	}
	gz, err := compress(wasm)
	if err != nil {
		return err
	}
	if err := os.WriteFile(gzPath, gz, 0o644); err != nil {
		return err
	}
	br, err := compressBrotli(wasm)
	if err != nil {
		return err
	}
	if err := os.WriteFile(brPath, br, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(jsPath, execJS, 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s and .br: %d bytes, %d gzipped, %d with Brotli\n", gzPath, len(wasm), len(gz), len(br))
	return nil
}

// build compiles ./wasm for the browser and returns the module.
func build(dir string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "genwasm")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "herald.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out, "./wasm")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build ./wasm for js/wasm: %w", err)
	}
	return os.ReadFile(out)
}

// wasmExec returns the JavaScript glue that must match the compiler: Go
// 1.24 moved it from misc/wasm to lib/wasm.
func wasmExec() ([]byte, error) {
	root, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOROOT: %w", err)
	}
	r := strings.TrimSpace(string(root))
	for _, p := range []string{filepath.Join(r, "lib", "wasm", "wasm_exec.js"), filepath.Join(r, "misc", "wasm", "wasm_exec.js")} {
		if b, err := os.ReadFile(p); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("no wasm_exec.js under %s", r)
}

// compress gzips at the best level with an empty header, so the same
// module always gives the same bytes.
func compress(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// compressBrotli uses the best quality and the largest window, which pays
// once here and saves on every first visit; the output is deterministic.
func compressBrotli(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	bw := brotli.NewWriterOptions(&buf, brotli.WriterOptions{Quality: brotli.BestCompression, LGWin: 24})
	if _, err := bw.Write(b); err != nil {
		return nil, err
	}
	if err := bw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func unbrotliFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(brotli.NewReader(f))
}

func gunzipFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}
