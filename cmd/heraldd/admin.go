package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/service"
)

const adminUsage = `usage: heraldd admin [server flags] COMMAND
  reports [--status open|resolved|dismissed]   the queue, newest first, grouped by target
  show REPORT_ID                              the reports on that target, and its content only if public
  takedown @chat --reason TEXT                hide a public channel or group from everyone
  suspend @user --reason TEXT [--for 7d]      end the user's sessions, refuse logins
  restore @chat|@user [--reason TEXT]         undo a takedown or a suspension
  delete @chat MESSAGE_ID --reason TEXT       delete one public post
  grant @user moderator | revoke @user        moderators can do all this through the API
  audit                                       who did what, when and why
  rules [set TEXT]                            show or set the server's rules`

// adminCommand runs one moderation command at the console. It works while
// the server runs: both share the store, and the server ends a suspended
// user's sessions within a second.
func adminCommand(ctx context.Context, svc *service.Service, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "help" {
		fmt.Fprintln(out, adminUsage)
		return nil
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("heraldd admin "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	reason := fs.String("reason", "", "why; every action needs one")
	status := fs.String("status", "", "reports with this status")
	dur := fs.String("for", "", "suspension length, e.g. 7d or 12h")
	// Flags may follow the positional arguments.
	var pos []string
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return fmt.Errorf("%v\n%s", err, adminUsage)
		}
		rest = fs.Args()
		if len(rest) > 0 {
			pos = append(pos, rest[0])
			rest = rest[1:]
		}
	}
	need := func(n int) error {
		if len(pos) != n {
			return errors.New(adminUsage)
		}
		return nil
	}
	op := service.Console
	switch cmd {
	case "reports":
		rs, ev, err := svc.Reports(ctx, op, *status, 1000)
		if err != nil {
			return err
		}
		printReports(ctx, svc, out, rs, ev)
		return nil
	case "show":
		if err := need(1); err != nil {
			return err
		}
		id, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a report id", pos[0])
		}
		v, err := svc.ShowReport(ctx, op, id)
		if err != nil {
			return err
		}
		printReports(ctx, svc, out, append([]herald.Report{v.Report}, v.Related...), v.Evidence)
		if v.Private != "" {
			fmt.Fprintln(out, "content:", v.Private)
		}
		for _, m := range v.Public {
			fmt.Fprintf(out, "public post #%d (%s): %s\n", m.Seq, m.SentAt.Format(time.RFC3339), m.Text)
		}
		return nil
	case "takedown":
		if err := need(1); err != nil {
			return err
		}
		ch, err := svc.Takedown(ctx, op, strings.TrimPrefix(pos[0], "@"), *reason, true)
		if err == nil {
			fmt.Fprintf(out, "@%s taken down\n", ch.Username)
		}
		return err
	case "suspend":
		if err := need(1); err != nil {
			return err
		}
		var d time.Duration
		if *dur != "" {
			var err error
			if d, err = parseDays(*dur); err != nil || d <= 0 {
				return fmt.Errorf("--for needs a duration like 12h or 7d, not %q", *dur)
			}
		}
		u, err := svc.Suspend(ctx, op, pos[0], *reason, d, true)
		if err == nil {
			fmt.Fprintf(out, "@%s suspended\n", u.Username)
		}
		return err
	case "restore":
		if err := need(1); err != nil {
			return err
		}
		r := *reason
		if r == "" {
			r = "restored at the console"
		}
		if err := svc.Restore(ctx, op, strings.TrimPrefix(pos[0], "@"), r); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s restored\n", pos[0])
		return nil
	case "delete":
		if err := need(2); err != nil {
			return err
		}
		seq, err := strconv.ParseInt(pos[1], 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a message id", pos[1])
		}
		return svc.DeletePost(ctx, op, strings.TrimPrefix(pos[0], "@"), seq, *reason)
	case "grant":
		if err := need(2); err != nil {
			return err
		}
		return svc.Grant(ctx, op, pos[0], pos[1], *reason)
	case "revoke":
		if err := need(1); err != nil {
			return err
		}
		return svc.Grant(ctx, op, pos[0], "", *reason)
	case "audit":
		es, err := svc.AuditLog(ctx, op, 1000)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WHEN\tOPERATOR\tACTION\tTARGET\tREASON")
		for _, e := range es {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), e.Operator, e.Action, e.Target, e.Reason)
		}
		return tw.Flush()
	case "rules":
		if len(pos) >= 2 && pos[0] == "set" {
			return svc.SetRules(ctx, op, strings.Join(pos[1:], " "))
		}
		rules, err := svc.Rules(ctx)
		if err == nil {
			fmt.Fprintln(out, rules)
		}
		return err
	}
	return fmt.Errorf("unknown admin command %q\n%s", cmd, adminUsage)
}

// printReports lists reports grouped by target, the group with the newest
// report first.
func printReports(ctx context.Context, svc *service.Service, out io.Writer, rs []herald.Report, evidence map[int64]string) {
	type group struct {
		target string
		rs     []herald.Report
	}
	var groups []*group
	byTarget := map[string]*group{}
	for _, r := range rs { // rs is newest first
		t := targetLabel(ctx, svc, r)
		g := byTarget[t]
		if g == nil {
			g = &group{target: t}
			byTarget[t] = g
			groups = append(groups, g)
		}
		g.rs = append(g.rs, r)
	}
	slices.SortStableFunc(groups, func(a, b *group) int { return int(b.rs[0].ID - a.rs[0].ID) })
	for _, g := range groups {
		fmt.Fprintf(out, "%s — %d report(s)\n", g.target, len(g.rs))
		for _, r := range g.rs {
			who := svc.UserNames(ctx, r.ReporterID)[r.ReporterID]
			fmt.Fprintf(out, "  #%d %s %s %s by @%s", r.ID, r.CreatedAt.Format(time.RFC3339), r.Status, r.Reason, who)
			if r.Kind == herald.ReportAppeal {
				fmt.Fprint(out, " (appeal)")
			}
			if r.Note != "" {
				fmt.Fprintf(out, ": %s", r.Note)
			}
			fmt.Fprintln(out)
			if e := evidence[r.ID]; e != "" {
				fmt.Fprintf(out, "    attached by the reporter: %s\n", e)
			}
		}
	}
}

func targetLabel(ctx context.Context, svc *service.Service, r herald.Report) string {
	switch {
	case r.TargetUser != 0:
		return "@" + svc.UserNames(ctx, r.TargetUser)[r.TargetUser]
	case r.TargetSeq != 0:
		return fmt.Sprintf("%s message %d", svc.ChatLabel(ctx, r.TargetChat), r.TargetSeq)
	}
	return svc.ChatLabel(ctx, r.TargetChat)
}

// parseDays reads "7d" or a Go duration.
func parseDays(v string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}
