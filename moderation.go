package herald

import "time"

// Moderation roles a user can hold on the server.
const (
	RoleModerator = "moderator"
)

// ReportKind says what a report is about.
type ReportKind string

// Report kinds.
const (
	ReportUser    ReportKind = "user"
	ReportChat    ReportKind = "chat"
	ReportMessage ReportKind = "message"
	ReportAppeal  ReportKind = "appeal" // the owner of moderated content asks for a second look
)

// ReportReasons are the reasons a report may give.
var ReportReasons = []string{"violence", "spam", "scam", "illegal", "other"}

// Report is one person's report of something they saw. Evidence is what
// the reporter chose to attach (for example the text of a message in a
// private chat they are in); the server never reads private chats itself.
type Report struct {
	ID         int64
	ReporterID int64
	Kind       ReportKind
	TargetUser int64
	TargetChat int64
	TargetSeq  int64
	Reason     string
	Note       string
	Evidence   []byte // sealed in the store; plaintext in the service
	Status     string // open, resolved, dismissed
	CreatedAt  time.Time
}

// AuditEntry is one line of the append-only moderation log. It never
// holds private message content.
type AuditEntry struct {
	ID       int64
	At       time.Time
	Operator string
	Action   string
	Target   string
	Reason   string
}
