package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
	"github.com/heraldim/herald/service"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// moderator makes d a moderator at the console.
func moderator(t *testing.T, n *server.Node, d *device) {
	t.Helper()
	if err := n.Service.Grant(ctxT(t), service.Console, d.user.name, herald.RoleModerator, "test"); err != nil {
		t.Fatal(err)
	}
}

func TestReportTakedownRestore(t *testing.T) {
	n := startNode(t, "")
	owner, fan, outsider, reporter, mod := signup(t, n, "owner"), signup(t, n, "fanof"), signup(t, n, "outsider"), signup(t, n, "reporter"), signup(t, n, "moder")
	moderator(t, n, mod)
	ch := createChannel(t, owner, fmt.Sprintf("badnews%d", userSeq.Add(1)), false)
	if _, err := fan.Join(ctxT(t), ch.Username, ""); err != nil {
		t.Fatal(err)
	}
	post := send(t, owner, &pb.Peer{ChatId: ch.Id}, "violent propaganda")
	nextPost(t, fan)

	// A report reaches the queue, with the public post visible to moderators.
	var rep pb.Report
	if err := reporter.Call(ctxT(t), "reports.create", &pb.ReportRequest{Username: ch.Username, MessageId: post.Id, Reason: "violence", Note: "calls for attacks"}, &rep); err != nil {
		t.Fatal(err)
	}
	var queue pb.ReportList
	if err := mod.Call(ctxT(t), "admin.reports", &pb.ReportsRequest{Status: "open"}, &queue); err != nil {
		t.Fatal(err)
	}
	if len(queue.Reports) != 1 || queue.Reports[0].Id != rep.Id || queue.Reports[0].Target != "@"+ch.Username {
		t.Fatalf("queue %v", queue.Reports)
	}
	var view pb.ReportView
	if err := mod.Call(ctxT(t), "admin.show", &pb.ShowReportRequest{Id: rep.Id}, &view); err != nil {
		t.Fatal(err)
	}
	if len(view.PublicContent) != 1 || view.PublicContent[0].Text != "violent propaganda" {
		t.Fatalf("public content %v", view.PublicContent)
	}
	// Only moderators act, and every action needs a reason.
	if err := fan.Call(ctxT(t), "admin.takedown", &pb.AdminRequest{Target: ch.Username, Reason: "x"}, nil); !herald.IsKind(err, herald.PermissionDenied) {
		t.Fatalf("non-moderator takedown: %v", err)
	}
	if err := mod.Call(ctxT(t), "admin.takedown", &pb.AdminRequest{Target: ch.Username}, nil); !herald.IsKind(err, herald.Invalid) {
		t.Fatalf("takedown without a reason: %v", err)
	}
	if err := mod.Call(ctxT(t), "admin.takedown", &pb.AdminRequest{Target: ch.Username, Reason: "promotes violence"}, nil); err != nil {
		t.Fatal(err)
	}
	// Subscribers are told why, in the chat.
	if u := nextPost(t, fan).GetNewMessage(); !u.Service || !strings.Contains(u.Text, "promotes violence") {
		t.Fatalf("takedown notice %v", u)
	}
	// Nobody gets anything: history, preview, join, posting.
	for _, d := range []*device{fan, outsider, owner} {
		_, err := d.History(ctxT(t), &pb.HistoryRequest{Peer: to(ch.Username)})
		if !herald.IsKind(err, herald.PermissionDenied) || !strings.Contains(herald.ErrorMessage(err), "promotes violence") {
			t.Fatalf("%s reading a taken-down channel: %v", d.user.name, err)
		}
	}
	if _, err := outsider.GetChat(ctxT(t), to(ch.Username)); !herald.IsKind(err, herald.PermissionDenied) {
		t.Fatalf("preview: %v", err)
	}
	if _, err := outsider.Join(ctxT(t), ch.Username, ""); !herald.IsKind(err, herald.PermissionDenied) || !strings.Contains(herald.ErrorMessage(err), "unavailable") {
		t.Fatalf("join: %v", err)
	}
	if _, err := owner.Send(ctxT(t), &pb.SendRequest{Peer: &pb.Peer{ChatId: ch.Id}, Text: "still here"}); !herald.IsKind(err, herald.PermissionDenied) {
		t.Fatalf("owner posting: %v", err)
	}
	// The owner appeals; the console restores.
	if err := owner.Call(ctxT(t), "reports.create", &pb.ReportRequest{ChatId: ch.Id, Appeal: true, Note: "it was news reporting"}, nil); err != nil {
		t.Fatalf("appeal: %v", err)
	}
	if err := n.Service.Restore(ctxT(t), service.Console, ch.Username, "news reporting, not propaganda"); err != nil {
		t.Fatal(err)
	}
	if h, err := outsider.History(ctxT(t), &pb.HistoryRequest{Peer: to(ch.Username)}); err != nil || len(h) < 1 {
		t.Fatalf("after restore: %v, %v", h, err)
	}
	es, err := n.Service.AuditLog(ctxT(t), service.Console, 10)
	if err != nil || len(es) < 2 {
		t.Fatal(es, err)
	}
	if es[0].Action != "restore" || es[0].Reason != "news reporting, not propaganda" || es[0].Operator != "console" ||
		es[1].Action != "takedown" || es[1].Reason != "promotes violence" || es[1].Operator != "@"+mod.user.name {
		t.Fatalf("audit %+v", es[:2])
	}
	// A failed action is in the log too: its entry is written first, and
	// a second one says it failed.
	if err := n.Service.DeletePost(ctxT(t), service.Console, ch.Username, 999, "spam"); !herald.IsKind(err, herald.NotFound) {
		t.Fatalf("deleting a post that is not there: %v", err)
	}
	es, err = n.Service.AuditLog(ctxT(t), service.Console, 2)
	if err != nil || len(es) != 2 || es[1].Action != "delete post 999" || es[0].Action != "delete post 999 failed" || es[0].Reason != string(herald.NotFound) {
		t.Fatalf("audit of a failed action: %+v, %v", es, err)
	}
}

func TestSuspensionEndsSessions(t *testing.T) {
	n := startNode(t, "")
	spammer := signup(t, n, "spammer")
	laptop := login(t, n, spammer.user)
	if _, err := n.Service.Suspend(ctxT(t), service.Console, spammer.user.name, "spam", 7*24*time.Hour, true); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{spammer, laptop} {
		select {
		case _, ok := <-d.Events():
			for ok {
				_, ok = <-d.Events()
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a suspended user's device is still connected")
		}
	}
	anon := newClient(t, n.URL(), "", false, -1)
	_, err := anon.Login(ctxT(t), &pb.LoginRequest{Username: spammer.user.name, Password: password})
	if !herald.IsKind(err, herald.PermissionDenied) || !strings.Contains(herald.ErrorMessage(err), "spam") {
		t.Fatalf("login while suspended: %v", err)
	}
	if err := n.Service.Restore(ctxT(t), service.Console, spammer.user.name, "appeal granted"); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Login(ctxT(t), &pb.LoginRequest{Username: spammer.user.name, Password: password}); err != nil {
		t.Fatalf("login after restore: %v", err)
	}
}

func TestSuspensionAtConsoleReachesRunningServer(t *testing.T) {
	dir := t.TempDir()
	n, err := server.Open(server.Config{Listen: "127.0.0.1:0", DataDir: dir, PasswordCost: cheap, AbuseLimits: lax, SweepEvery: 100 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	spammer := signup(t, n, "spammer")
	// heraldd admin is another process on the same store: here, a second
	// node on the same data directory that never serves.
	console, err := server.Open(server.Config{Listen: "127.0.0.1:0", DataDir: dir, PasswordCost: cheap, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := console.Service.Suspend(ctxT(t), service.Console, spammer.user.name, "spam from the console", 0, true); err != nil {
		t.Fatal(err)
	}
	console.Shutdown(context.Background())
	select {
	case _, ok := <-spammer.Events():
		for ok {
			_, ok = <-spammer.Events()
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the running server did not end the sessions of a user suspended at the console")
	}
}

func TestModeratorsCannotReadPrivateChats(t *testing.T) {
	n := startNode(t, "")
	alice, bobby, mod := signup(t, n, "alice"), signup(t, n, "bobby"), signup(t, n, "moder")
	moderator(t, n, mod)
	const secret = "PRIVATE-BODY-2b7c"
	m := send(t, alice, to(bobby.user.name), secret+" do not share")
	g, err := alice.CreateGroup(ctxT(t), "private group", []string{bobby.user.name})
	if err != nil {
		t.Fatal(err)
	}
	send(t, alice, &pb.Peer{ChatId: g.Id}, secret+" in the group")
	// bobby reports both, attaching only his own words.
	var r1, r2 pb.Report
	if err := bobby.Call(ctxT(t), "reports.create", &pb.ReportRequest{ChatId: m.ChatId, MessageId: m.Id, Reason: "scam", Evidence: "she asked for my bank details"}, &r1); err != nil {
		t.Fatal(err)
	}
	if err := bobby.Call(ctxT(t), "reports.create", &pb.ReportRequest{ChatId: g.Id, Reason: "spam"}, &r2); err != nil {
		t.Fatal(err)
	}
	// Everything a moderator can ask for, through the API and the console.
	var outputs []string
	collect := func(msg proto.Message) { outputs = append(outputs, protojson.Format(msg)) }
	for _, id := range []int64{r1.Id, r2.Id} {
		var v pb.ReportView
		if err := mod.Call(ctxT(t), "admin.show", &pb.ShowReportRequest{Id: id}, &v); err != nil {
			t.Fatal(err)
		}
		if len(v.PublicContent) != 0 || v.PrivateNote == "" {
			t.Fatalf("report %d on a private chat showed content: %v", id, v.PublicContent)
		}
		collect(&v)
	}
	var l pb.ReportList
	if err := mod.Call(ctxT(t), "admin.reports", &pb.ReportsRequest{}, &l); err != nil {
		t.Fatal(err)
	}
	collect(&l)
	var a pb.AuditList
	for _, target := range []string{fmt.Sprint(m.ChatId), fmt.Sprint(g.Id)} {
		err := mod.Call(ctxT(t), "admin.takedown", &pb.AdminRequest{Target: target, Reason: "look inside"}, nil)
		if !herald.IsKind(err, herald.PermissionDenied) {
			t.Fatalf("taking down private chat %s: %v", target, err)
		}
		err = mod.Call(ctxT(t), "admin.delete_post", &pb.AdminRequest{Target: target, MessageId: 1, Reason: "look inside"}, nil)
		if !herald.IsKind(err, herald.PermissionDenied) {
			t.Fatalf("deleting in private chat %s: %v", target, err)
		}
	}
	if err := mod.Call(ctxT(t), "admin.audit", &pb.Empty{}, &a); err != nil {
		t.Fatal(err)
	}
	collect(&a)
	// The moderator's own account is no key either.
	if _, err := mod.History(ctxT(t), &pb.HistoryRequest{Peer: &pb.Peer{ChatId: m.ChatId}}); !herald.IsKind(err, herald.NotFound) {
		t.Fatalf("moderator reading a direct chat: %v", err)
	}
	for _, o := range outputs {
		if strings.Contains(o, secret) {
			t.Fatalf("a private body appeared in moderator output: %s", o)
		}
	}
	if !strings.Contains(strings.Join(outputs, "\n"), "bank details") {
		t.Fatal("what the reporter chose to attach should reach the moderators")
	}
}

func TestBlocking(t *testing.T) {
	n := startNode(t, "")
	alice, pest := signup(t, n, "alice"), signup(t, n, "pester")
	send(t, pest, to(alice.user.name), "hi")
	if err := alice.Call(ctxT(t), "users.block", &pb.BlockRequest{Username: pest.user.name, Blocked: true}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pest.Send(ctxT(t), &pb.SendRequest{Peer: to(alice.user.name), Text: "hello?"}); !herald.IsKind(err, herald.PermissionDenied) {
		t.Fatalf("blocked user sending: %v", err)
	}
	if _, err := pest.CreateGroup(ctxT(t), "join me", []string{alice.user.name}); !herald.IsKind(err, herald.PermissionDenied) {
		t.Fatalf("blocked user adding to a new group: %v", err)
	}
	g, err := pest.CreateGroup(ctxT(t), "later", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pest.AddMembers(ctxT(t), g.Id, []string{alice.user.name}); !herald.IsKind(err, herald.PermissionDenied) {
		t.Fatalf("blocked user adding to a group: %v", err)
	}
	// Alice can still write; unblocking lets him reply.
	send(t, alice, to(pest.user.name), "stop")
	if err := alice.Call(ctxT(t), "users.block", &pb.BlockRequest{Username: pest.user.name, Blocked: false}, nil); err != nil {
		t.Fatal(err)
	}
	send(t, pest, to(alice.user.name), "sorry")
}

func TestRateLimitsAreLoudNeverSilent(t *testing.T) {
	n, err := server.Open(server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), PasswordCost: cheap,
		AbuseLimits: service.Limits{DirectPerSecond: 2, SignupsPerHourPerAddr: 4},
		Log:         slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")

	accepted, limited := map[string]bool{}, 0
	for i := range 20 {
		text := fmt.Sprintf("burst %d", i)
		_, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: to(bobby.user.name), Text: text})
		var he *herald.Error
		switch {
		case err == nil:
			accepted[text] = true
		case errorsAs(err, &he) && he.Kind == herald.RateLimited && he.RetryAfter > 0:
			limited++
		default:
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if limited == 0 || len(accepted) == 0 {
		t.Fatalf("accepted %d, limited %d: the limit did not apply", len(accepted), limited)
	}
	// Everything accepted is there; nothing refused is.
	h, err := bobby.History(ctxT(t), &pb.HistoryRequest{Peer: to(alice.user.name), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != len(accepted) {
		t.Fatalf("history has %d messages, %d were accepted", len(h), len(accepted))
	}
	for _, m := range h {
		if !accepted[m.Text] {
			t.Fatalf("history holds %q, which was refused", m.Text)
		}
	}
	// Signups per address.
	anon := newClient(t, n.URL(), "", false, -1)
	var err2 error
	for i := range 5 {
		_, err2 = anon.Signup(ctxT(t), &pb.SignupRequest{Username: fmt.Sprintf("flood%d", i), Password: password})
		if err2 != nil {
			break
		}
		anon = newClient(t, n.URL(), "", false, -1)
	}
	if !herald.IsKind(err2, herald.RateLimited) {
		t.Fatalf("signup flood: %v", err2)
	}
}
