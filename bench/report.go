package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// rateLimitHint explains RATE_LIMITED answers in a report.
const rateLimitHint = "the server's abuse limits refused sends; for a benchmark run heraldd with -send-rate 1000000 (messages per user per second)"

// Row is one line of a human-readable report: a figure and its value.
type Row struct{ Name, Value string }

// WriteTable prints rows under a title, aligned.
func WriteTable(w io.Writer, title string, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, title)
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s\t%s\n", r.Name, r.Value)
	}
	return tw.Flush()
}

func latencyRow(name string, l Latency) Row {
	if l.Count == 0 {
		return Row{name, "-"}
	}
	return Row{name, fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (n=%d)", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max), l.Count)}
}

func ms(m Millis) string {
	switch {
	case m < 1:
		return fmt.Sprintf("%.3fms", float64(m))
	case m < 100:
		return fmt.Sprintf("%.1fms", float64(m))
	}
	return fmt.Sprintf("%.0fms", float64(m))
}

func kinds(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s %d  ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}

func serverRows(s ServerStats) []Row {
	return []Row{
		{"server RSS", fmt.Sprintf("%.0f MiB -> %.0f MiB", s.RSSBeforeMiB, s.RSSAfterMiB)},
		{"server CPU", fmt.Sprintf("%.1f s (%.2f cores)", s.CPUSeconds, s.CPUCores)},
		{"slow consumers cut off", fmt.Sprintf("%.0f", s.SlowConsumers)},
	}
}

// Rows reports a messaging run.
func (r LoadResult) Rows() []Row {
	offered := Row{"offered", fmt.Sprintf("%.0f msg/s for %.1f s (%d sends)", r.Offered, float64(r.Duration)/1000, r.Scheduled)}
	if r.InFlight > 0 {
		offered = Row{"closed loop", fmt.Sprintf("%d in flight per sender for %.1f s (%d sends)", r.InFlight, float64(r.Duration)/1000, r.Scheduled)}
	}
	rows := []Row{
		offered,
		{"accepted", fmt.Sprintf("%d (%.0f/s)", r.Accepted, r.AcceptedPerSec)},
		{"delivered", fmt.Sprintf("%d of %d expected (%.0f/s), %d duplicates", r.Delivered, r.ExpectedDeliveries, r.DeliveredPerSec, r.Duplicates)},
		{"skipped (generator backlog)", fmt.Sprint(r.Skipped)},
		{"errors", kinds(r.Errors)},
	}
	if r.Errors["RATE_LIMITED"] > 0 {
		rows = append(rows, Row{"note", rateLimitHint})
	}
	rows = append(rows, []Row{
		latencyRow("latency send->device", r.Latency),
		latencyRow("latency send->ack", r.AckLatency),
		{"reconnects", fmt.Sprint(r.Reconnects)},
	}...)
	rows = append(rows, serverRows(r.Server)...)
	rows = append(rows, Row{"server CPU per message", fmt.Sprintf("%.0f µs", r.ServerCPUPerMessage)})
	return append(rows, Row{"generator CPU", fmt.Sprintf("%.2f cores", r.GeneratorCPU)})
}

// Write prints the direct result as a table.
func (r DirectResult) Write(w io.Writer) error {
	return WriteTable(w, fmt.Sprintf("direct: %d pairs", r.Pairs), r.Rows())
}

// Write prints the group result as a table.
func (r GroupResult) Write(w io.Writer) error {
	return WriteTable(w, fmt.Sprintf("group: %d members", r.Members), r.Rows())
}

// Write prints a search's steps and its answer.
func (r MaxResult) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s --max: highest rate with p99 <= %s\n", r.Scenario, ms(r.P99Bound))
	fmt.Fprintln(tw, "rate/s\taccepted/s\tdelivered/s\tp50\tp99\tp99.9\tmax\tserver cores\tresult\t")
	for _, s := range r.Steps {
		res := "pass"
		if !s.Pass {
			res = "FAIL: " + s.Why
		}
		l := s.Result.Latency
		fmt.Fprintf(tw, "%.0f\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%.2f\t%s\t\n", s.Rate, s.Result.AcceptedPerSec, s.Result.DeliveredPerSec,
			ms(l.P50), ms(l.P99), ms(l.P999), ms(l.Max), s.Result.Server.CPUCores, res)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	note := ""
	if !r.Bracketed {
		note = " (not bracketed: the search ran out of steps or time, or reached its ceiling)"
	}
	_, err := fmt.Fprintf(w, "max rate: %.0f msg/s%s\n", r.MaxRate, note)
	return err
}

// Write prints the connect result as a table.
func (r ConnectResult) Write(w io.Writer) error {
	rows := []Row{
		{"connections", fmt.Sprintf("%d of %d opened, %d failed", r.Opened, r.Requested, r.Failed)},
		{"errors", kinds(r.Errors)},
		{"users / source addresses", fmt.Sprintf("%d / %d", r.Users, r.Sources)},
		{"ramp", fmt.Sprintf("%.1f s (%.0f connections/s)", r.RampSeconds, r.RampPerSec)},
		latencyRow("connect + auth.resume", r.ConnectLatency),
		{"held", fmt.Sprintf("%.0f s, %d dropped, %d frames received", r.HoldSeconds, r.Dropped, r.FramesReceived)},
		{"server connections", fmt.Sprintf("%.0f", r.ServerConnections)},
		{"server RSS", fmt.Sprintf("%.0f MiB before, %.0f MiB after the ramp, %.0f MiB at the end", r.Server.RSSBeforeMiB, r.Server.RSSAfterMiB, r.RSSEndMiB)},
		{"server memory per connection", fmt.Sprintf("%.1f KiB RSS, %.1f KiB Go heap, %.1f goroutines", r.BytesPerConn/1024, r.HeapBytesPerConn/1024, r.GoroutinesPerConn)},
		{"server CPU during the ramp", fmt.Sprintf("%.1f s (%.2f cores)", r.Server.CPUSeconds, r.Server.CPUCores)},
		{"generator memory per connection", fmt.Sprintf("%.1f KiB (heap + stacks)", r.GeneratorHeapPerCon/1024)},
	}
	if b := r.Broadcast; b != nil {
		rows = append(rows,
			Row{"broadcast", fmt.Sprintf("one post to @%s: reached %d connections, %d missing; the last after %.0f ms", b.Channel, b.Reached, b.Missing, b.LastMS)},
			latencyRow("broadcast send → arrival", b.Delivery))
	}
	for _, k := range slices.Sorted(maps.Keys(r.ErrorSamples)) {
		rows = append(rows, Row{"first " + k, r.ErrorSamples[k]})
	}
	return WriteTable(w, "connect: idle connections", rows)
}

// Write prints the sync result as a table.
func (r SyncResult) Write(w io.Writer) error {
	rows := []Row{
		{"missed", fmt.Sprintf("%d sent by %d users, %d accepted in %.1f s (%.0f/s), errors: %s", r.Missed, r.SenderUsers, r.Accepted, r.SendSecs, r.SendRate, kinds(r.Errors))},
		{"catch-up", fmt.Sprintf("%d of %d in %.2f s (%.0f updates/s)", r.Received, r.Accepted, r.CatchUpSecs, r.UpdatesPerSec)},
		{"first update after", ms(r.FirstUpdateMs)},
		{"in order / duplicates / other", fmt.Sprintf("%v / %d / %d", r.InOrder, r.Duplicates, r.Other)},
	}
	if r.RateLimited > 0 {
		rows = append(rows, Row{"rate limited (retried)", fmt.Sprintf("%d sends: %s", r.RateLimited, rateLimitHint)})
	}
	rows = append(rows, serverRows(r.Server)...)
	return WriteTable(w, "sync: an offline device catches up", rows)
}

// Write prints the channel result as a table.
func (r ChannelResult) Write(w io.Writer) error {
	rows := []Row{
		{"channel", fmt.Sprintf("@%s, %d of %d subscribers connected from %d source addresses", r.Channel, r.Connected, r.Subscribers, r.Sources)},
		{"setup", fmt.Sprintf("joins %.1f s (%d rate limited, retried), connections %.1f s", r.JoinSeconds, r.JoinsRateLimited, r.ConnectSeconds)},
		{"posts", fmt.Sprintf("%d of %d sent, one at a time", r.Sent, r.Posts)},
		latencyRow("post -> last subscriber", r.ToLast),
		latencyRow("post -> first subscriber", r.ToFirst),
		latencyRow("post -> each delivery", r.Delivery),
		latencyRow("post -> owner's ack", r.SendAck),
		{"delivered", fmt.Sprintf("%d of %d expected (%.0f/s while in flight), %d missing, %d duplicates, %d unexpected", r.Delivered, r.Expected, r.DeliveredPerSec, r.Missing, r.Duplicates, r.Unexpected)},
		{"dropped connections", fmt.Sprint(r.Dropped)},
		{"errors", kinds(r.Errors)},
	}
	if r.JoinsRateLimited > 0 {
		rows = append(rows, Row{"note", "the server's join limit slowed the setup; for a benchmark run heraldd with -join-rate 1000000 (joins per chat per minute)"})
	}
	rows = append(rows,
		Row{"server RSS", fmt.Sprintf("%.0f MiB before, %.0f MiB after the subscribers connected", r.RSSBeforeConnectMiB, r.RSSAfterConnectMiB)},
		Row{"server memory per subscriber", fmt.Sprintf("%.1f KiB RSS, %.1f KiB Go heap, %.1f goroutines", r.BytesPerSubscriber/1024, r.HeapPerSubscriber/1024, r.GoroutinesPerSub)},
		Row{"server CPU during the posts", fmt.Sprintf("%.1f s (%.2f cores)", r.Server.CPUSeconds, r.Server.CPUCores)},
		Row{"slow consumers cut off", fmt.Sprintf("%.0f", r.Server.SlowConsumers)},
		Row{"generator CPU during the posts", fmt.Sprintf("%.2f cores", r.GeneratorCPU)},
	)
	for _, k := range slices.Sorted(maps.Keys(r.ErrorSamples)) {
		rows = append(rows, Row{"first " + k, r.ErrorSamples[k]})
	}
	return WriteTable(w, fmt.Sprintf("channel: a post to %d connected subscribers", r.Connected), rows)
}
