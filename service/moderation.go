package service

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
)

// Operator is who performs a moderation action: a moderator account using
// the API, or the server's operator at the console (heraldd admin).
type Operator struct {
	Name   string // for the audit log: "@alice" or "console"
	UserID int64  // 0 for the console
}

// Console is the operator at the server's own console.
var Console = Operator{Name: "console"}

const maxReason = 500

// unavailable is what everyone is told about a chat taken down.
func unavailable(ch herald.Chat) error {
	return herald.Errorf(herald.PermissionDenied, "unavailable: violated the server's rules (%s)", ch.TakedownReason)
}

func (s *Service) mod() (store.Moderation, error) {
	if s.moderation == nil {
		return nil, herald.Errorf(herald.Unavailable, "moderation is not available with this store")
	}
	return s.moderation, nil
}

// AsOperator checks that the caller holds the moderator role and returns
// them as an operator.
func (s *Service) AsOperator(ctx context.Context, c Caller) (Operator, error) {
	u, err := s.store.Users(ctx, []int64{c.UserID})
	if err != nil {
		return Operator{}, err
	}
	if u[c.UserID].Role != herald.RoleModerator {
		return Operator{}, herald.Errorf(herald.PermissionDenied, "only the server's moderators can do that")
	}
	return Operator{Name: "@" + c.Username, UserID: c.UserID}, nil
}

func checkReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return "", herald.Errorf(herald.Invalid, "every moderation action needs a reason")
	}
	if utf8.RuneCountInString(reason) > maxReason || !utf8.ValidString(reason) {
		return "", herald.Errorf(herald.Invalid, "a reason is valid UTF-8 of at most %d characters", maxReason)
	}
	return reason, nil
}

func (s *Service) audit(ctx context.Context, op Operator, action, target, reason string) error {
	m, err := s.mod()
	if err != nil {
		return err
	}
	return m.AppendAudit(ctx, herald.AuditEntry{At: s.now(), Operator: op.Name, Action: action, Target: target, Reason: reason})
}

// audited writes an action's audit entry, then does it: an operator's
// action never happens without its entry. (A crash in between leaves an
// entry for an action not done, which is the side to err on for an
// accountability log.) An action that fails gets a second entry saying
// so, with the error's kind.
func (s *Service) audited(ctx context.Context, op Operator, action, target, reason string, do func() error) error {
	if err := s.audit(ctx, op, action, target, reason); err != nil {
		return err
	}
	if err := do(); err != nil {
		if aerr := s.audit(context.WithoutCancel(ctx), op, action+" failed", target, string(herald.ErrorKind(err))); aerr != nil {
			s.log.ErrorContext(ctx, "audit entry of a failed action not written", "action", action, "err", aerr)
		}
		return err
	}
	return nil
}

// publicChat resolves an operator's target to a public chat: "@name" or a
// chat id of a channel or group with a public name. Private chats are
// never a moderation target: operators act on public content only.
func (s *Service) publicChat(ctx context.Context, target string) (herald.Chat, error) {
	var ch herald.Chat
	var err error
	if id, perr := strconv.ParseInt(target, 10, 64); perr == nil {
		ch, err = s.store.Chat(ctx, id)
	} else {
		ch, err = s.store.ChatByName(ctx, herald.NormalizeUsername(target))
	}
	if err != nil {
		return ch, herald.Errorf(herald.NotFound, "no public channel or group %s", target)
	}
	if !ch.Public() {
		return ch, herald.Errorf(herald.PermissionDenied, "operators act on public channels and groups only; %s is private", target)
	}
	return ch, nil
}

// Takedown hides a public channel or group from everyone: nothing of it is
// served, previews and joins are refused with the reason, and its members
// are told in the chat itself.
func (s *Service) Takedown(ctx context.Context, op Operator, target, reason string, down bool) (herald.Chat, error) {
	m, err := s.mod()
	if err != nil {
		return herald.Chat{}, err
	}
	if reason, err = checkReason(reason); err != nil {
		return herald.Chat{}, err
	}
	ch, err := s.publicChat(ctx, target)
	if err != nil {
		return ch, err
	}
	note := "This chat was taken down by the server's moderators: " + reason
	if !down {
		note = "This chat was restored by the server's moderators: " + reason
	}
	if rules, _ := m.Setting(ctx, "rules"); rules != "" && down {
		note += " — the server's rules: herald rules"
	}
	action := "takedown"
	if !down {
		action = "restore"
	}
	return ch, s.audited(ctx, op, action, "@"+ch.Username, reason, func() error {
		// The notice goes out before the chat closes, so its members see why.
		if down {
			if _, err := s.append(ctx, herald.Message{ChatID: ch.ID, SenderID: ch.CreatedBy, Text: note, Service: true, SentAt: s.now()}); err != nil {
				return err
			}
		}
		if err := m.SetTakedown(ctx, ch.ID, down, reason); err != nil {
			return err
		}
		s.forgetChat(ctx, ch.ID)
		if !down {
			if _, err := s.append(ctx, herald.Message{ChatID: ch.ID, SenderID: ch.CreatedBy, Text: note, Service: true, SentAt: s.now()}); err != nil {
				return err
			}
		}
		return m.ResolveReports(ctx, herald.ReportChat, 0, ch.ID, 0, "resolved")
	})
}

// Suspend suspends an account (until zero: lift it). Its sessions end at
// once on every node, and logging in is refused with the reason.
func (s *Service) Suspend(ctx context.Context, op Operator, username, reason string, d time.Duration, on bool) (herald.User, error) {
	m, err := s.mod()
	if err != nil {
		return herald.User{}, err
	}
	if reason, err = checkReason(reason); err != nil {
		return herald.User{}, err
	}
	u, err := s.ResolveUser(ctx, username)
	if err != nil {
		return u, err
	}
	var until time.Time
	if on {
		until = s.now().Add(100 * 365 * 24 * time.Hour) // indefinitely
		if d > 0 {
			until = s.now().Add(d)
		}
	}
	action := "restore"
	if on {
		action = "suspend"
		if d > 0 {
			action = "suspend for " + HumanDuration(d)
		}
	}
	return u, s.audited(ctx, op, action, "@"+u.Username, reason, func() error {
		if err := m.Suspend(ctx, u.ID, until, reason, s.now()); err != nil {
			return err
		}
		s.forgetUser(u.ID)
		if on {
			s.emitRevoked(ctx, u.ID, 0) // every device
		}
		return m.ResolveReports(ctx, herald.ReportUser, u.ID, 0, 0, "resolved")
	})
}

// CloseSuspendedSince ends the sessions of users suspended at or after t —
// by any process sharing the store, such as heraldd admin at the console.
func (s *Service) CloseSuspendedSince(ctx context.Context, t time.Time) error {
	m, err := s.mod()
	if err != nil {
		return nil
	}
	ids, err := m.SuspendedSince(ctx, t)
	if err != nil {
		return err
	}
	for _, id := range ids {
		s.forgetUser(id)
		s.emitRevoked(ctx, id, 0)
	}
	return nil
}

// DeletePost deletes one post of a public channel or group for everyone.
func (s *Service) DeletePost(ctx context.Context, op Operator, target string, seq int64, reason string) error {
	m, err := s.mod()
	if err != nil {
		return err
	}
	if reason, err = checkReason(reason); err != nil {
		return err
	}
	ch, err := s.publicChat(ctx, target)
	if err != nil {
		return err
	}
	return s.audited(ctx, op, "delete post "+strconv.FormatInt(seq, 10), "@"+ch.Username, reason, func() error {
		ups, err := s.store.DeleteMessages(ctx, 0, ch.ID, []int64{seq}, true, s.now())
		if err != nil {
			return err
		}
		if len(ups) == 0 {
			return herald.Errorf(herald.NotFound, "no message %d in %s", seq, target)
		}
		s.announce(ctx, ups)
		return m.ResolveReports(ctx, herald.ReportMessage, 0, ch.ID, seq, "resolved")
	})
}

// Grant gives or removes a server role; console only.
func (s *Service) Grant(ctx context.Context, op Operator, username, role, reason string) error {
	m, err := s.mod()
	if err != nil {
		return err
	}
	if op.UserID != 0 {
		return herald.Errorf(herald.PermissionDenied, "roles are granted at the server's console")
	}
	if role != "" && role != herald.RoleModerator {
		return herald.Errorf(herald.Invalid, "the only role is %s", herald.RoleModerator)
	}
	if reason == "" {
		reason = "granted at the console"
	}
	u, err := s.ResolveUser(ctx, username)
	if err != nil {
		return err
	}
	action := "grant " + role
	if role == "" {
		action = "revoke roles"
	}
	return s.audited(ctx, op, action, "@"+u.Username, reason, func() error {
		if err := m.SetUserRole(ctx, u.ID, role); err != nil {
			return err
		}
		s.forgetUser(u.ID)
		return nil
	})
}

// AuditLog returns the newest entries of the audit log.
func (s *Service) AuditLog(ctx context.Context, op Operator, limit int) ([]herald.AuditEntry, error) {
	m, err := s.mod()
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	return m.Audit(ctx, limit)
}

// SetRules sets the server's rules text; console only.
func (s *Service) SetRules(ctx context.Context, op Operator, text string) error {
	m, err := s.mod()
	if err != nil {
		return err
	}
	if !utf8.ValidString(text) || len(text) > 64<<10 {
		return herald.Errorf(herald.Invalid, "the rules are valid UTF-8 of at most 64 KiB")
	}
	return s.audited(ctx, op, "set rules", "server", "rules changed", func() error {
		return m.SetSetting(ctx, "rules", text)
	})
}

// Rules returns the server's rules text (empty if none).
func (s *Service) Rules(ctx context.Context) (string, error) {
	m, err := s.mod()
	if err != nil {
		return "", nil
	}
	return m.Setting(ctx, "rules")
}

// ReportParams describe a report.
type ReportParams struct {
	Username string // a user, or a public chat by @name
	ChatID   int64  // or a chat the reporter is in
	Seq      int64  // a message in that chat
	Reason   string
	Note     string
	Evidence string // what the reporter chose to attach
	Appeal   bool
}

// Report files a report on a user, a chat or a message the reporter can
// see, or an appeal against a moderation action.
func (s *Service) Report(ctx context.Context, c Caller, p ReportParams) (herald.Report, error) {
	m, err := s.mod()
	if err != nil {
		return herald.Report{}, err
	}
	r := herald.Report{ReporterID: c.UserID, Reason: strings.ToLower(strings.TrimSpace(p.Reason)), Note: strings.TrimSpace(p.Note), CreatedAt: s.now()}
	if p.Appeal {
		r.Reason = "appeal"
	} else if !slices.Contains(herald.ReportReasons, r.Reason) {
		return r, herald.Errorf(herald.Invalid, "a reason is one of %s", strings.Join(herald.ReportReasons, ", "))
	}
	if err := herald.ValidateName("note", strings.ReplaceAll(r.Note, "\n", " "), maxReason); err != nil {
		return r, err
	}
	if len(p.Evidence) > 16<<10 || !utf8.ValidString(p.Evidence) {
		return r, herald.Errorf(herald.TooLarge, "attached evidence is valid UTF-8 of at most 16 KiB")
	}
	switch {
	case p.ChatID != 0:
		// A chat or message the reporter can see: theirs, or public.
		ch, _, err := s.membership(ctx, c, p.ChatID, true)
		if err != nil && !(herald.IsKind(err, herald.PermissionDenied) && p.Appeal) {
			return r, err
		}
		r.Kind, r.TargetChat = herald.ReportChat, ch.ID
		if p.Seq > 0 {
			if _, err := s.store.Message(ctx, c.UserID, ch.ID, p.Seq); err != nil {
				return r, err
			}
			r.Kind, r.TargetSeq = herald.ReportMessage, p.Seq
		}
	case p.Username != "":
		if u, err := s.ResolveUser(ctx, p.Username); err == nil {
			r.Kind, r.TargetUser = herald.ReportUser, u.ID
		} else if ch, cerr := s.store.ChatByName(ctx, herald.NormalizeUsername(p.Username)); cerr == nil {
			r.Kind, r.TargetChat = herald.ReportChat, ch.ID
			if p.Seq > 0 {
				r.Kind, r.TargetSeq = herald.ReportMessage, p.Seq
			}
		} else {
			return r, err
		}
	default:
		return r, herald.Errorf(herald.Invalid, "name what you report: @name or a chat id")
	}
	if p.Appeal {
		r.Kind = herald.ReportAppeal
	}
	// Each report is a row of up to 16 KiB and work for a moderator.
	if err := s.rl.reports.take(ctx, key(c.UserID)); err != nil {
		return r, err
	}
	if p.Evidence != "" {
		r.Evidence = s.sealer.Seal(-c.UserID, []byte(p.Evidence))
	}
	return m.CreateReport(ctx, r)
}

// ReportView is what a moderator sees of a report: the reports on the same
// target, and the content only where it is public. Private chats are never
// shown; what a reporter attached is shown as theirs.
type ReportView struct {
	Report   herald.Report
	Related  []herald.Report
	Public   []herald.Message
	Private  string // why no content is shown
	Evidence map[int64]string
}

// Reports lists reports, newest first.
func (s *Service) Reports(ctx context.Context, op Operator, status string, limit int) ([]herald.Report, map[int64]string, error) {
	m, err := s.mod()
	if err != nil {
		return nil, nil, err
	}
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	rs, err := m.Reports(ctx, status, limit)
	if err != nil {
		return nil, nil, err
	}
	return rs, s.evidence(rs), nil
}

func (s *Service) evidence(rs []herald.Report) map[int64]string {
	out := map[int64]string{}
	for _, r := range rs {
		if len(r.Evidence) > 0 {
			if pt, err := s.sealer.Open(-r.ReporterID, r.Evidence); err == nil {
				out[r.ID] = string(pt)
			}
		}
	}
	return out
}

// ShowReport returns a report with what a moderator may see about it.
func (s *Service) ShowReport(ctx context.Context, op Operator, id int64) (ReportView, error) {
	m, err := s.mod()
	if err != nil {
		return ReportView{}, err
	}
	r, err := m.Report(ctx, id)
	if err != nil {
		return ReportView{}, err
	}
	v := ReportView{Report: r}
	all, err := m.Reports(ctx, "", 1000)
	if err != nil {
		return v, err
	}
	for _, o := range all {
		if o.ID != r.ID && o.TargetUser == r.TargetUser && o.TargetChat == r.TargetChat {
			v.Related = append(v.Related, o)
		}
	}
	v.Evidence = s.evidence(append([]herald.Report{r}, v.Related...))
	if r.TargetChat == 0 {
		return v, nil
	}
	ch, err := s.store.Chat(ctx, r.TargetChat)
	if err != nil {
		return v, err
	}
	if !ch.Public() {
		v.Private = fmt.Sprintf("chat %d is private: its messages are never shown to operators; only what reporters attached", ch.ID)
		return v, nil
	}
	var msgs []herald.Message
	if r.TargetSeq > 0 {
		if msg, err := s.store.Message(ctx, 0, ch.ID, r.TargetSeq); err == nil {
			msgs = []herald.Message{msg}
		}
	} else if msgs, err = s.store.History(ctx, 0, ch.ID, 0, 20); err != nil {
		return v, err
	}
	for i := range msgs {
		if err := s.open(ctx, &msgs[i]); err != nil {
			return v, err
		}
		if !msgs[i].Deleted {
			v.Public = append(v.Public, msgs[i])
		}
	}
	return v, nil
}

// Block stops (or allows again) messages and group invitations from a user.
func (s *Service) Block(ctx context.Context, c Caller, username string, on bool) error {
	m, err := s.mod()
	if err != nil {
		return err
	}
	u, err := s.ResolveUser(ctx, username)
	if err != nil {
		return err
	}
	if u.ID == c.UserID {
		return herald.Errorf(herald.Invalid, "you cannot block yourself")
	}
	return m.Block(ctx, c.UserID, u.ID, on, s.now())
}

// blockedBy returns PermissionDenied if target blocked actor.
func (s *Service) blockedBy(ctx context.Context, target, actor int64, what string) error {
	if s.moderation == nil || target == actor {
		return nil
	}
	b, err := s.moderation.Blocked(ctx, target, actor)
	if err != nil {
		return err
	}
	if b {
		name := s.UserNames(ctx, target)[target]
		return herald.Errorf(herald.PermissionDenied, "@%s does not accept %s from you", name, what)
	}
	return nil
}

func (s *Service) forgetUser(id int64) {
	s.usersMu.Lock()
	delete(s.users, id)
	s.usersMu.Unlock()
}

// Restore lifts a takedown of a chat or the suspension of a user, whichever
// the target names.
func (s *Service) Restore(ctx context.Context, op Operator, target, reason string) error {
	if _, err := s.ResolveUser(ctx, target); err == nil {
		_, err := s.Suspend(ctx, op, target, reason, 0, false)
		return err
	}
	_, err := s.Takedown(ctx, op, target, reason, false)
	return err
}

// ChatLabel names a chat for operators: @name if public, else its id.
func (s *Service) ChatLabel(ctx context.Context, id int64) string {
	if ch, err := s.store.Chat(ctx, id); err == nil && ch.Username != "" {
		return "@" + ch.Username
	}
	return "chat " + strconv.FormatInt(id, 10)
}
