package client

import (
	"bytes"
	"testing"
)

func TestPadHidesLength(t *testing.T) {
	for _, n := range []int{0, 1, 254, 255, 256, 1000} {
		b := bytes.Repeat([]byte{'x'}, n)
		p := pad(b)
		if len(p)%padBlock != 0 || len(p) <= n {
			t.Errorf("pad(%d bytes) = %d bytes", n, len(p))
		}
		got, err := unpad(p)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("unpad(pad(%d bytes)) = %d bytes, %v", n, len(got), err)
		}
	}
	if len(pad(make([]byte, 10))) != len(pad(make([]byte, 200))) {
		t.Error("two short messages of different length pad to different sizes")
	}
}

// FuzzUnpad: whatever a peer's device sends after decryption, unpad
// returns an error or a prefix, never panics.
func FuzzUnpad(f *testing.F) {
	f.Add(pad([]byte(`{"v":1}`)))
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := unpad(b)
		if err == nil && !bytes.HasPrefix(b, got) {
			t.Fatalf("unpad returned bytes that are not a prefix")
		}
	})
}

func TestSafetyHalfIsOrderFree(t *testing.T) {
	a, b := []byte{5, 1, 2}, []byte{5, 3, 4}
	if !bytes.Equal(half(7, [][]byte{a, b}), half(7, [][]byte{b, a})) {
		t.Error("the order devices are listed in changes the safety number")
	}
	if bytes.Equal(half(7, [][]byte{a}), half(7, [][]byte{a, b})) {
		t.Error("a new device does not change the safety number")
	}
}
