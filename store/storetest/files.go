package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/heraldim/herald"
)

func (f *fixture) file(owner int64, n int) herald.File {
	f.t.Helper()
	file := herald.File{
		ID: fmt.Sprintf("%032x", f.now.UnixNano()+int64(n)), OwnerID: owner, Name: "report.pdf", Size: int64(1000 + n),
		MIME: "application/pdf", Kind: herald.FileDocument, SHA256: fmt.Sprintf("%064x", n), Width: 3, Height: 4,
		Duration: 1500 * time.Millisecond, Thumb: true, Created: f.tick(), Key: []byte("sealed key"),
	}
	if err := f.s.CreateFile(f.ctx, file); err != nil {
		f.t.Fatalf("CreateFile: %v", err)
	}
	return file
}

func (f *fixture) sendFile(chatID, sender int64, id string, expires time.Time) herald.Message {
	f.t.Helper()
	m, _, _, err := f.s.AppendMessage(f.ctx, herald.Message{ChatID: chatID, SenderID: sender, Body: []byte("caption"),
		SentAt: f.tick(), File: &herald.File{ID: id}, ExpiresAt: expires, SealedUntil: expires})
	if err != nil {
		f.t.Fatalf("AppendMessage with a file: %v", err)
	}
	return m
}

func testFiles(t *testing.T, f *fixture) {
	alice, bobby, carol := f.user(), f.user(), f.user()
	file := f.file(alice.ID, 1)

	got, err := f.s.File(f.ctx, file.ID)
	if err != nil {
		t.Fatal(err)
	}
	got.Created, file.Created = got.Created.UTC(), file.Created.UTC()
	if fmt.Sprint(got) != fmt.Sprint(file) {
		t.Errorf("File = %+v, want %+v", got, file)
	}
	_, err = f.s.File(f.ctx, "missing")
	wantKind(t, "File(missing)", err, herald.NotFound)
	wantKind(t, "CreateFile(same id)", f.s.CreateFile(f.ctx, file), herald.AlreadyExists)

	if h, err := f.s.FileByHash(f.ctx, alice.ID, file.SHA256); err != nil || h.ID != file.ID {
		t.Errorf("FileByHash(owner) = %v, %v", h.ID, err)
	}
	_, err = f.s.FileByHash(f.ctx, bobby.ID, file.SHA256)
	wantKind(t, "FileByHash(another user)", err, herald.NotFound)

	f.file(alice.ID, 2)
	if used, err := f.s.StorageUsed(f.ctx, alice.ID); err != nil || used != 1001+1002 {
		t.Errorf("StorageUsed = %d, %v; want %d", used, err, 1001+1002)
	}

	can := func(u herald.User) bool {
		ok, err := f.s.CanReadFile(f.ctx, u.ID, file.ID)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !can(alice) || can(bobby) || can(carol) {
		t.Fatalf("before sending: alice %v bobby %v carol %v, want only the uploader", can(alice), can(bobby), can(carol))
	}
	c := f.direct(alice.ID, bobby.ID)
	m := f.sendFile(c.ID, alice.ID, file.ID, time.Time{})
	if m.File == nil || m.File.ID != file.ID {
		t.Fatalf("AppendMessage returned file %v", m.File)
	}
	stored, err := f.s.Message(f.ctx, bobby.ID, c.ID, m.Seq)
	if err != nil || stored.File == nil || stored.File.ID != file.ID {
		t.Fatalf("Message().File = %v, %v", stored.File, err)
	}
	if h := f.history(bobby.ID, c.ID); len(h) != 1 || h[0].File == nil || h[0].File.ID != file.ID {
		t.Fatalf("History lost the file: %+v", h)
	}
	if d := f.diff(bobby.ID, 0); len(d) == 0 || d[len(d)-1].Message == nil || d[len(d)-1].Message.File == nil {
		t.Fatalf("Difference lost the file")
	}
	if !can(bobby) || can(carol) {
		t.Fatalf("after sending: bobby %v carol %v", can(bobby), can(carol))
	}
	if n, err := f.s.FileRefs(f.ctx, file.ID); err != nil || n != 1 {
		t.Errorf("FileRefs = %d, %v", n, err)
	}
	if _, err := f.s.DeleteMessages(f.ctx, alice.ID, c.ID, []int64{m.Seq}, true, f.tick()); err != nil {
		t.Fatal(err)
	}
	if can(bobby) {
		t.Error("bobby can still read the file of a message deleted for everyone")
	}
	if n, _ := f.s.FileRefs(f.ctx, file.ID); n != 0 {
		t.Errorf("FileRefs after delete = %d", n)
	}

	// A file of a self-destructing message: found by the sweep once its
	// key's time is up, or once no message carries it.
	tf := f.file(alice.ID, 3)
	until := f.now.Add(time.Hour)
	if err := f.s.ResealFile(f.ctx, tf.ID, []byte("ring sealed"), until); err != nil {
		t.Fatal(err)
	}
	wantKind(t, "ResealFile(missing)", f.s.ResealFile(f.ctx, "missing", nil, until), herald.NotFound)
	if ex, err := f.s.ExpiredFiles(f.ctx, f.now, 10); err != nil || len(ex) != 0 {
		t.Fatalf("ExpiredFiles before anything ended = %v, %v", ex, err)
	}
	tm := f.sendFile(c.ID, alice.ID, tf.ID, until)
	if ex, _ := f.s.ExpiredFiles(f.ctx, f.now, 10); len(ex) != 0 {
		t.Fatalf("a file whose message lives was found expired: %v", ex)
	}
	if ex, _ := f.s.ExpiredFiles(f.ctx, until, 10); len(ex) != 1 || ex[0].ID != tf.ID || string(ex[0].Key) != "ring sealed" {
		t.Fatalf("ExpiredFiles at the key's end = %v", ex)
	}
	if _, err := f.s.DeleteMessages(f.ctx, alice.ID, c.ID, []int64{tm.Seq}, true, f.tick()); err != nil {
		t.Fatal(err)
	}
	if ex, _ := f.s.ExpiredFiles(f.ctx, f.now, 10); len(ex) != 1 {
		t.Fatalf("a file no message carries any more was not found: %v", ex)
	}
	if err := f.s.DeleteFile(f.ctx, tf.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.s.File(f.ctx, tf.ID)
	wantKind(t, "File after DeleteFile", err, herald.NotFound)
}

// Unfinished uploads count against the quota from their creation: a
// reservation that fits is recorded and counted, one that does not is
// refused with what is used, and released ones stop counting.
func testUploadReservations(t *testing.T, f *fixture) {
	dan, eve := f.user(), f.user()
	f.file(dan.ID, 1) // 1001 bytes
	const quota = 5000
	steps := []struct {
		id       string
		owner    int64
		size     int64
		ok       bool
		wantUsed int64 // StorageUsed before it
	}{
		{"up-a", dan.ID, 2000, true, 1001},
		{"up-b", dan.ID, 1999, true, 3001},
		{"up-c", dan.ID, 1, false, 5000}, // full: even one byte is refused
		{"up-d", eve.ID, 5000, true, 0},  // another owner's quota
	}
	for _, s := range steps {
		used, ok, err := f.s.ReserveUpload(f.ctx, s.id, s.owner, s.size, f.tick(), quota)
		if err != nil || ok != s.ok || used != s.wantUsed {
			t.Fatalf("ReserveUpload(%s, %d) = %d, %v, %v; want %d, %v", s.id, s.size, used, ok, err, s.wantUsed, s.ok)
		}
	}
	if used, _ := f.s.StorageUsed(f.ctx, dan.ID); used != 5000 {
		t.Fatalf("StorageUsed with two reservations = %d, want 5000", used)
	}
	old, err := f.s.ReservationsBefore(f.ctx, f.tick(), 10)
	if err != nil || len(old) != 3 || old[0] != "up-a" {
		t.Fatalf("ReservationsBefore = %v, %v; want up-a, up-b, up-d", old, err)
	}
	if err := f.s.ReleaseUpload(f.ctx, "up-a"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.ReleaseUpload(f.ctx, "up-a"); err != nil {
		t.Fatalf("releasing twice: %v", err)
	}
	if used, ok, err := f.s.ReserveUpload(f.ctx, "up-c", dan.ID, 1, f.tick(), quota); err != nil || !ok || used != 3000 {
		t.Fatalf("after a release: %d, %v, %v", used, ok, err)
	}
}
