package crypto

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"hash/fnv"
	"io"

	"filippo.io/age"
)

// Files are encrypted in the age format: 64 KiB ChaCha20-Poly1305 chunks,
// so a range read decrypts only the chunks it touches. Each file has its
// own random age file key; the header names no recipient, because the key
// is kept sealed in the store (by a Sealer, or by a KeyRing when the file
// must die with a self-destructing message) rather than wrapped inside
// the file.

// fileStanza marks a file whose key is held outside it.
const fileStanza = "herald-file-key"

// keyCapture is an age.Recipient that records the file key age generated
// instead of wrapping it for anyone.
type keyCapture struct{ key []byte }

func (k *keyCapture) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	k.key = append([]byte(nil), fileKey...)
	return []*age.Stanza{{Type: fileStanza}}, nil
}

// EncryptFile returns a writer that encrypts what is written to it into
// dst under a fresh random key, and that key. Close the writer to finish
// the file; until then its end is not authenticated.
func EncryptFile(dst io.Writer) (io.WriteCloser, []byte, error) {
	rc := &keyCapture{}
	w, err := age.Encrypt(dst, rc)
	if err != nil {
		return nil, nil, err
	}
	if len(rc.key) == 0 {
		return nil, nil, errors.New("crypto: age produced no file key")
	}
	return w, rc.key, nil
}

// DecryptFile streams the plaintext of a file encrypted by EncryptFile.
func DecryptFile(src io.Reader, key []byte) (io.Reader, error) {
	return age.Decrypt(src, age.NewInjectedFileKeyIdentity(key))
}

// DecryptFileAt gives random access to the plaintext of an encrypted file
// of encryptedSize bytes, and returns the plaintext's size. Each read
// fetches and authenticates only the chunks it covers.
func DecryptFileAt(src io.ReaderAt, encryptedSize int64, key []byte) (io.ReaderAt, int64, error) {
	return age.DecryptReaderAt(src, encryptedSize, age.NewInjectedFileKeyIdentity(key))
}

// FileBinding is the sealing context for the key of the file with this
// id. It is negative, so a file key can never be opened as a message body
// (message bodies bind positive chat ids), and the reverse.
func FileBinding(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte("herald file key\x00" + id))
	return -int64(h.Sum64()>>1) - 1
}

// SealWithFileKey encrypts a small value that belongs to a file (its
// thumbnail) under a key derived from the file's key, so it shares the
// file's fate: when the file key is destroyed, so is this.
func SealWithFileKey(fileKey []byte, label string, data []byte) ([]byte, error) {
	aead, err := fileAEAD(fileKey, label)
	if err != nil {
		return nil, err
	}
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(data)+aead.Overhead())
	rand.Read(out)
	return aead.Seal(out, out, data, nil), nil
}

// OpenWithFileKey reverses SealWithFileKey.
func OpenWithFileKey(fileKey []byte, label string, sealed []byte) ([]byte, error) {
	aead, err := fileAEAD(fileKey, label)
	if err != nil {
		return nil, err
	}
	ns := aead.NonceSize()
	if len(sealed) < ns+aead.Overhead() {
		return nil, ErrCorrupt
	}
	pt, err := aead.Open(nil, sealed[:ns], sealed[ns:], nil)
	if err != nil {
		return nil, ErrCorrupt
	}
	return pt, nil
}

func fileAEAD(fileKey []byte, label string) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, fileKey, nil, "herald file part v1 "+label, 32)
	if err != nil {
		return nil, err
	}
	return newGCM(k)
}

// EncryptStream encrypts what it reads from src under a fresh file key
// and hands the ciphertext, as a stream, to store (which reads it to its
// end, as a blob store's Put does). It returns the key and the number of
// plaintext bytes encrypted. With keepPartial, a read error from src
// (a client gone mid-upload) ends the file early, authenticated, instead
// of failing: what arrived is kept.
func EncryptStream(src io.Reader, keepPartial bool, store func(io.Reader) error) (key []byte, n int64, err error) {
	pr, pw := io.Pipe()
	type result struct {
		key []byte
		n   int64
	}
	done := make(chan result, 1)
	go func() {
		var res result
		w, k, err := EncryptFile(pw)
		if err == nil {
			res.key = k
			res.n, err = io.Copy(w, src)
			if err != nil && keepPartial {
				err = nil
			}
			if err == nil {
				err = w.Close()
			}
		}
		pw.CloseWithError(err)
		done <- res
	}()
	err = store(pr)
	pr.CloseWithError(errors.New("crypto: the store stopped reading"))
	res := <-done
	if err != nil {
		return nil, 0, err
	}
	return res.key, res.n, nil
}
