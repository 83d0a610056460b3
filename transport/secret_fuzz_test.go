package transport

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/service"
)

// secretMethodNames are the secret-chat requests whose parameters a
// client fills with key material and ciphertext.
var secretMethodNames = []string{"keys.publish", "secret.send", "keys.bundles", "secret.ack", "secret.group.send", "secret.group.create"}

// FuzzSecretRequests: whatever a client sends as a secret-chat request,
// the server's decoding and the checks made before anything is looked up
// or stored (service.CheckKeyUpload, service.CheckSecretSend,
// service.CheckSecretGroupSend) end in a
// request or an INVALID_ARGUMENT / TOO_LARGE error, never a panic; and
// what they accept is what the store relies on. The committed corpus
// (testdata/fuzz/FuzzSecretRequests) holds a valid key upload with real
// libsignal keys, a forged signature, valid and invalid sends.
func FuzzSecretRequests(f *testing.F) {
	f.Add(uint8(2), []byte("\n\x05bobby"))
	f.Add(uint8(1), []byte{0x12, 0x80})
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		name := secretMethodNames[int(which)%len(secretMethodNames)]
		p, err := methods[name].decode(data)
		if err != nil {
			if !herald.IsKind(err, herald.Invalid) {
				t.Fatalf("%s: decoder error of kind %s", name, herald.ErrorKind(err))
			}
			return
		}
		switch r := p.(type) {
		case *pb.PublishKeysRequest:
			up := keyUpload(r)
			err = service.CheckKeyUpload(up, now)
			if err == nil && (len(up.IdentityKey) != 33 || len(up.Signed.PublicKey) != 33 || len(up.Signed.Signature) != 64 ||
				up.RegistrationID == 0 || len(up.PreKeys) > herald.MaxPreKeysPerUpload) {
				t.Fatalf("accepted a malformed key upload: %+v", up)
			}
		case *pb.SecretSendRequest:
			var named []int64
			s := secretSend(r)
			named, err = service.CheckSecretSend(s)
			if err == nil {
				if len(named) != len(s.Envelopes) || len(named) == 0 || len(named) > herald.MaxEnvelopesPerSend || s.TTL < 0 {
					t.Fatalf("accepted %d envelopes naming %v", len(s.Envelopes), named)
				}
				for i, e := range s.Envelopes {
					if len(e.Body) == 0 || len(e.Body) > herald.MaxEnvelopeBytes || (e.Type != herald.EnvelopeWhisper && e.Type != herald.EnvelopePreKey) ||
						slices.Contains(named[:i], e.DeviceID) {
						t.Fatalf("accepted envelope %d: type %d, %d bytes, device %d", i, e.Type, len(e.Body), e.DeviceID)
					}
				}
			}
		case *pb.SecretGroupSendRequest:
			g := secretGroupSend(r)
			err = service.CheckSecretGroupSend(g)
			if err == nil {
				n := 0
				for _, d := range g.Devices {
					n += len(d.Devices)
				}
				if len(g.Body) == 0 || len(g.Body) > herald.MaxEnvelopeBytes || g.TTL < 0 || len(g.FileIDs) > 10 ||
					len(g.Devices) > herald.MaxSecretGroupMembers || n > 16*herald.MaxSecretGroupMembers {
					t.Fatalf("accepted a group send of %d bytes, %d device sets, %d devices", len(g.Body), len(g.Devices), n)
				}
			}
		}
		if err != nil && !herald.IsKind(err, herald.Invalid) && !herald.IsKind(err, herald.TooLarge) {
			t.Fatalf("%s: check error of kind %s: %v", name, herald.ErrorKind(err), err)
		}
	})
}

// The committed corpus's valid upload passes the checks and its forged
// signature does not: the fuzz target starts from inputs that reach past
// the first check.
func TestSecretCorpusReachesChecks(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		file string
		ok   bool
	}{{"publish-valid", true}, {"publish-bad-signature", false}, {"send-valid", true}, {"send-duplicate-device", false}} {
		which, data := readCorpus(t, "FuzzSecretRequests", tt.file)
		p, err := methods[secretMethodNames[which]].decode(data)
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		switch r := p.(type) {
		case *pb.PublishKeysRequest:
			err = service.CheckKeyUpload(keyUpload(r), now)
		case *pb.SecretSendRequest:
			_, err = service.CheckSecretSend(secretSend(r))
		}
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v; want ok=%v", tt.file, err, tt.ok)
		}
	}
}

// readCorpus reads a (byte, []byte) entry of a committed fuzz corpus.
func readCorpus(t *testing.T, target, file string) (int, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fuzz", target, file))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "byte(") || !strings.HasPrefix(lines[2], "[]byte(") {
		t.Fatalf("%s: not a (byte, []byte) corpus entry", file)
	}
	c, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "byte("), ")"))
	if err != nil || len(c) != 1 {
		t.Fatalf("%s: %q: %v", file, lines[1], err)
	}
	data, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[2], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return int(c[0]) % len(secretMethodNames), []byte(data)
}
