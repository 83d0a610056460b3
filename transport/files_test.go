package transport

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/heraldim/herald/blob/dir"
	"github.com/heraldim/herald/bus/memory"
	"github.com/heraldim/herald/crypto"
	"github.com/heraldim/herald/service"
	"github.com/heraldim/herald/store/sqlite"
	"github.com/heraldim/herald/transport/tusstore"
	tus "github.com/tus/tusd/v2/pkg/handler"
)

// The abandoned-upload sweep gives back the quota of uploads it deletes,
// and of reservations whose upload was never created (its creation
// failed after the quota was reserved).
func TestSweepReleasesReservations(t *testing.T) {
	ctx := context.Background()
	d := t.TempDir()
	db, err := sqlite.Open(filepath.Join(d, "herald.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	blobs, err := dir.New(filepath.Join(d, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := crypto.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	b := memory.New()
	svc := service.New(service.Config{Store: db, Bus: b, Sealer: sealer, Blobs: blobs,
		PasswordCost: service.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}})
	sess, err := svc.Signup(ctx, "alice", "long enough password", "", "phone", "")
	if err != nil {
		t.Fatal(err)
	}
	tr := New(svc, b, nil, Limits{})
	if err := tr.EnableFiles(Files{Blobs: blobs, Sealer: sealer, Abandoned: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	alice := service.Caller{UserID: sess.User.ID}
	orphan, started := tusstore.NewID(), tusstore.NewID()
	for id, size := range map[string]int64{orphan: 100, started: 200} {
		if err := svc.ReserveUpload(ctx, alice, id, size); err != nil {
			t.Fatal(err)
		}
	}
	meta := tus.MetaData{tusstore.OwnerKey: strconv.FormatInt(alice.UserID, 10)}
	if _, err := tr.files.uploads.NewUpload(ctx, tus.FileInfo{ID: started, Size: 200, MetaData: meta}); err != nil {
		t.Fatal(err)
	}
	if used, _ := db.StorageUsed(ctx, alice.UserID); used != 300 {
		t.Fatalf("StorageUsed before the sweep = %d, want 300", used)
	}
	time.Sleep(20 * time.Millisecond) // both are now older than Abandoned
	n, err := tr.SweepUploads(ctx)
	if err != nil || n != 1 {
		t.Fatalf("SweepUploads = %d, %v; want the one upload deleted", n, err)
	}
	if used, _ := db.StorageUsed(ctx, alice.UserID); used != 0 {
		t.Fatalf("StorageUsed after the sweep = %d, want 0", used)
	}
}
