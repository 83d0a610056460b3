package crypto_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"

	"github.com/heraldim/herald/crypto"
)

func TestFileRoundTripAndRandomAccess(t *testing.T) {
	plain := make([]byte, 3*64<<10+1234) // several age chunks and a partial one
	rand.Read(plain)
	var enc bytes.Buffer
	w, key, err := crypto.EncryptFile(&enc)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc.Bytes(), plain[:64]) {
		t.Fatal("ciphertext contains plaintext")
	}
	r, err := crypto.DecryptFile(bytes.NewReader(enc.Bytes()), key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("stream decrypt: err %v, equal %v", err, bytes.Equal(got, plain))
	}
	ra, size, err := crypto.DecryptFileAt(bytes.NewReader(enc.Bytes()), int64(enc.Len()), key)
	if err != nil || size != int64(len(plain)) {
		t.Fatalf("DecryptFileAt: size %d err %v", size, err)
	}
	for _, c := range []struct{ off, n int }{{0, 10}, {64<<10 - 5, 10}, {2 * 64 << 10, 64 << 10}, {len(plain) - 7, 7}} {
		buf := make([]byte, c.n)
		if _, err := ra.ReadAt(buf, int64(c.off)); err != nil && err != io.EOF {
			t.Fatalf("ReadAt(%d, %d): %v", c.off, c.n, err)
		}
		if !bytes.Equal(buf, plain[c.off:c.off+c.n]) {
			t.Fatalf("ReadAt(%d, %d) returned wrong bytes", c.off, c.n)
		}
	}
	wrong := bytes.Clone(key)
	wrong[0] ^= 1
	if _, _, err := crypto.DecryptFileAt(bytes.NewReader(enc.Bytes()), int64(enc.Len()), wrong); err == nil {
		t.Fatal("a wrong key opened the file")
	}
}

func TestFileBindingNeverMatchesAChat(t *testing.T) {
	for _, id := range []string{"", "a", "0123456789abcdef", "files/x"} {
		if b := crypto.FileBinding(id); b >= 0 {
			t.Errorf("FileBinding(%q) = %d, want negative", id, b)
		}
	}
	if crypto.FileBinding("a") == crypto.FileBinding("b") {
		t.Error("two ids share a binding")
	}
}
