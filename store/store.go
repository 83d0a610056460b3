// Package store defines the persistence Herald's service needs. The
// embedded implementation is store/sqlite; every implementation passes
// store/storetest unchanged.
//
// Write methods are atomic: either everything they describe is committed,
// with the updates they return, or nothing is. Every returned Update has its
// Pts assigned and is durable when the method returns.
package store

import (
	"context"
	"time"

	"github.com/heraldim/herald"
)

// Store is the persistence interface. Errors carry herald kinds: NotFound
// for a missing row, AlreadyExists for a unique key taken, Unavailable when
// the store cannot be reached or is closing, Internal otherwise.
type Store interface {
	// CreateUser adds an account. If invite is non-empty it is consumed in
	// the same transaction (NotFound if unknown or used). AlreadyExists if
	// the username is taken.
	CreateUser(ctx context.Context, u herald.User, passwordHash []byte, invite string) (herald.User, error)
	// UserByName returns the user and their password hash. NotFound.
	UserByName(ctx context.Context, username string) (herald.User, []byte, error)
	// Users returns the users with the given ids that exist.
	Users(ctx context.Context, ids []int64) (map[int64]herald.User, error)
	// CreateInvite stores a single-use signup invite code.
	CreateInvite(ctx context.Context, code string, at time.Time) error

	// CreateDevice adds a device with the hash of its bearer token.
	CreateDevice(ctx context.Context, d herald.Device, tokenHash []byte) (herald.Device, error)
	// DeviceByToken finds the device whose token hashes to tokenHash. NotFound.
	DeviceByToken(ctx context.Context, tokenHash []byte) (herald.Device, error)
	// Devices lists a user's devices, oldest first.
	Devices(ctx context.Context, userID int64) ([]herald.Device, error)
	// DeleteDevice removes a device of userID. NotFound if it is not theirs.
	DeleteDevice(ctx context.Context, userID, deviceID int64) error
	// TouchDevice records that the device was seen at t.
	TouchDevice(ctx context.Context, deviceID int64, t time.Time) error

	// DirectChat returns the direct chat between a and b, creating it (with
	// both as members, and an UpdChatJoined for each) if create is set.
	// NotFound if it does not exist and create is false.
	DirectChat(ctx context.Context, a, b int64, create bool, at time.Time) (herald.Chat, []herald.Update, error)
	// CreateGroup creates a group owned by c.CreatedBy with the given other
	// members, and logs UpdChatJoined for every member.
	CreateGroup(ctx context.Context, c herald.Chat, members []int64) (herald.Chat, []herald.Update, error)
	// Chat returns a chat. NotFound.
	Chat(ctx context.Context, chatID int64) (herald.Chat, error)
	// Member returns userID's membership in chatID. NotFound if not a member.
	Member(ctx context.Context, chatID, userID int64) (herald.Member, error)
	// OwnedChats counts the groups and channels userID owns.
	OwnedChats(ctx context.Context, userID int64) (int, error)
	// Members lists a chat's members.
	Members(ctx context.Context, chatID int64) ([]herald.Member, error)
	// AddMembers adds users (those already members are skipped) with role,
	// logging UpdChatJoined for each new member and, except in broadcast
	// chats (whose members do not see each other), one UpdMembers (Seq 1,
	// Seqs: the new members in the order given, ActorID: the first of
	// them) for each member from before: newcomers plus members updates,
	// never newcomers times members.
	AddMembers(ctx context.Context, chatID, actorID int64, userIDs []int64, role herald.Role, at time.Time) ([]herald.Update, error)
	// RemoveMembers removes users: UpdChatLeft for each, and unless the
	// chat is broadcast one UpdMembers (Seq 0, Seqs: the users in the order
	// given, ActorID: the first) for each member who stays. NotFound, and
	// nothing removed, if any of them is not a member.
	RemoveMembers(ctx context.Context, chatID, actorID int64, userIDs []int64, at time.Time) ([]herald.Update, error)
	// SetRole changes a member's role and logs UpdMembers (Seq 2) for every
	// member (only for userID in broadcast chats). NotFound if userID is
	// not a member.
	SetRole(ctx context.Context, chatID, actorID, userID int64, role herald.Role, at time.Time) ([]herald.Update, error)
	// MakeBroadcast switches a chat to fan-out on read for good, and logs
	// UpdChatJoined (Seq: the chat's log position) for every member so their
	// devices start following the chat's own log.
	MakeBroadcast(ctx context.Context, chatID int64, at time.Time) ([]herald.Update, error)
	// CreateChannel creates a channel (a broadcast chat) owned by
	// c.CreatedBy, claiming c.Username in the shared namespace of @names if
	// it is set (AlreadyExists if taken), and logs UpdChatJoined for the
	// owner.
	CreateChannel(ctx context.Context, c herald.Chat) (herald.Chat, []herald.Update, error)
	// ChatByName finds a chat by its public @name. NotFound.
	ChatByName(ctx context.Context, name string) (herald.Chat, error)
	// UpdateChat stores a chat's title, description and signatures setting.
	UpdateChat(ctx context.Context, c herald.Chat) error
	// SetMuted mutes or unmutes chatID for userID. NotFound if not a member.
	SetMuted(ctx context.Context, chatID, userID int64, muted bool) error
	// BroadcastChats lists the broadcast chats userID follows unmuted.
	BroadcastChats(ctx context.Context, userID int64) ([]int64, error)
	// ChatDifference returns up to limit entries of a broadcast chat's log
	// after pts, with the messages they refer to in their current state.
	ChatDifference(ctx context.Context, chatID, pts int64, limit int) (herald.Difference, error)
	// ViewPosts records that userID has seen chatID's messages up to seq:
	// each message between the user's previous view position and seq
	// gains one view. Nothing happens if the position does not move.
	ViewPosts(ctx context.Context, chatID, userID, seq int64) error
	// CreateChatInvite stores an invite code for chatID.
	CreateChatInvite(ctx context.Context, code string, chatID, by int64, at time.Time) error
	// ChatInvite returns the chat a live invite code is for. NotFound if
	// unknown or revoked.
	ChatInvite(ctx context.Context, code string) (int64, error)
	// RevokeChatInvite revokes an invite of chatID. NotFound.
	RevokeChatInvite(ctx context.Context, chatID int64, code string) error

	// Dialogs returns up to limit lines of a user's chat list after the
	// cursor, most recent activity first (Dialog.Active, then the chat id,
	// both descending).
	Dialogs(ctx context.Context, userID int64, after herald.DialogCursor, limit int) ([]herald.Dialog, error)

	// AppendMessage gives m the chat's next seq, stores it, advances the
	// sender's read position to it, and logs UpdNewMessage for every member
	// — or, in a broadcast chat, once in the chat's log (an Update with
	// UserID 0): the cost of a post does not grow with the audience.
	// If the sender already sent a message with the same non-zero RandomID
	// to this chat, that message is returned with dup set and nothing is
	// written: a retried send is never stored twice. A non-empty m.Extra
	// (a bot's sealed keyboard) is stored in the same transaction, so a
	// message is never seen without it.
	AppendMessage(ctx context.Context, m herald.Message) (msg herald.Message, ups []herald.Update, dup bool, err error)
	// Message returns one message as userID may see it. NotFound if it does
	// not exist or userID deleted it for themself.
	Message(ctx context.Context, userID, chatID, seq int64) (herald.Message, error)
	// History returns up to limit messages with seq < before (0: from the
	// newest), newest first, leaving out those deleted for everyone or for
	// userID.
	History(ctx context.Context, userID, chatID, before int64, limit int) ([]herald.Message, error)
	// EditMessage replaces a message's body and logs UpdEditMessage for
	// every member (once in the chat's log if broadcast).
	EditMessage(ctx context.Context, chatID, seq int64, body []byte, at time.Time) (herald.Message, []herald.Update, error)
	// DeleteMessages deletes seqs for everyone (bodies are erased, every
	// member gets UpdDelete, or the chat's log once if broadcast) or only
	// for userID (their devices get UpdDelete).
	DeleteMessages(ctx context.Context, userID, chatID int64, seqs []int64, forEveryone bool, at time.Time) ([]herald.Update, error)
	// ReadHistory moves userID's read position in chatID forward to seq
	// (never back), logging UpdReadInbox for the user and UpdReadOutbox for
	// the other members (none in broadcast chats). No updates if the
	// position did not move.
	ReadHistory(ctx context.Context, userID, chatID, seq int64, at time.Time) ([]herald.Update, error)

	// ExpireMessages deletes, as a delete for everyone would, up to limit
	// messages whose ExpiresAt is at or before now, oldest first, and
	// returns the updates it logged and how many messages it deleted.
	ExpireMessages(ctx context.Context, now time.Time, limit int) ([]herald.Update, int, error)
	// WaitingTimers returns up to limit messages whose timer waits for a
	// read and whose body is sealed until at or before the given time and
	// before the message's own end (those can still be moved later).
	WaitingTimers(ctx context.Context, sealedBy time.Time, limit int) ([]herald.Message, error)
	// UnreadTimers returns the messages of chatID up to seq, not sent by
	// readerID, whose timer waits for a read.
	UnreadTimers(ctx context.Context, chatID, readerID, seq int64) ([]herald.Message, error)
	// Reseal stores new Body, SealedUntil, ExpiresAt and Waiting for the
	// given messages (by ChatID and Seq), skipping deleted ones and those
	// whose timer no longer waits. With
	// announce, every member's devices get UpdEditMessage so they learn the
	// new ExpiresAt.
	Reseal(ctx context.Context, msgs []herald.Message, announce bool, at time.Time) ([]herald.Update, error)
	// SetChatTTL sets a chat's auto-delete timer (0: off).
	SetChatTTL(ctx context.Context, chatID int64, ttl time.Duration) error

	// CreateCall stores a ringing call, unless its caller or callee is
	// busy in another call at c.StartedAt: then it returns that person's
	// id and AlreadyExists.
	CreateCall(ctx context.Context, c herald.Call) (busy int64, err error)
	// Call returns a call. NotFound.
	Call(ctx context.Context, id string) (herald.Call, error)
	// UpdateCall writes c's state, outcome, answering device and times
	// over the stored call if that is still in state from, and reports
	// whether it was: two devices answering at once, or an answer racing
	// a hang-up, find exactly one winner.
	UpdateCall(ctx context.Context, c herald.Call, from herald.CallState) (bool, error)
	// Checkpoint folds the write-ahead log into the database file and
	// empties it, so deleted content does not linger in the log.
	Checkpoint(ctx context.Context) error

	// CreateFile stores an uploaded file's metadata and sealed key.
	// AlreadyExists if the id is taken.
	CreateFile(ctx context.Context, f herald.File) error
	// File returns a file. NotFound.
	File(ctx context.Context, id string) (herald.File, error)
	// FileByHash returns the oldest of ownerID's files whose plaintext has
	// this SHA-256 (hex). NotFound.
	FileByHash(ctx context.Context, ownerID int64, sha string) (herald.File, error)
	// CanReadFile reports whether userID may read a file: they uploaded
	// it, or a message not deleted carries it in a chat they are a member
	// of or in a public chat that is not taken down.
	CanReadFile(ctx context.Context, userID int64, id string) (bool, error)
	// StorageUsed returns the bytes of all files ownerID uploaded, and of
	// their unfinished uploads' reservations.
	StorageUsed(ctx context.Context, ownerID int64) (int64, error)
	// ReserveUpload records that upload id of ownerID will take size
	// bytes, if that keeps the owner's StorageUsed within quota (ok);
	// otherwise it records nothing. used is StorageUsed before it. Two
	// reservations of one owner at once never both pass on one sum.
	ReserveUpload(ctx context.Context, id string, ownerID, size int64, at time.Time, quota int64) (used int64, ok bool, err error)
	// ReleaseUpload drops upload id's reservation (none: no error).
	ReleaseUpload(ctx context.Context, id string) error
	// ReservationsBefore lists up to limit reservations made before the
	// given time, oldest first.
	ReservationsBefore(ctx context.Context, before time.Time, limit int) ([]string, error)
	// FileRefs counts the messages not deleted that carry a file.
	FileRefs(ctx context.Context, id string) (int, error)
	// ResealFile stores a file's key sealed anew. NotFound.
	ResealFile(ctx context.Context, id string, key []byte, sealedUntil time.Time) error
	// ExpiredFiles returns up to limit files once attached to
	// self-destructing messages whose key is sealed until at or before now,
	// or that no message carries any more.
	ExpiredFiles(ctx context.Context, now time.Time, limit int) ([]herald.File, error)
	// DeleteFile removes a file's row (its blob is the caller's to remove).
	DeleteFile(ctx context.Context, id string) error

	// Pts returns the last pts of a user's update log.
	Pts(ctx context.Context, userID int64) (int64, error)
	// Difference returns up to limit updates of userID's log after pts, with
	// the messages they refer to in their current state.
	Difference(ctx context.Context, userID, pts int64, limit int) (herald.Difference, error)

	// Close flushes pending writes and releases the store.
	Close() error
}

// Leaser is implemented by stores that several nodes share. A lease names
// work that one node at a time must do (the expiry sweep, one bot's
// webhook deliveries): its holder keeps it by renewing it before it lapses,
// and when the holder's node dies the lease lapses and another node takes
// it. Leases are rows, not session locks, so they hold no connection and
// survive a database restart; their times are the database's, so the
// nodes' clocks need not agree. A single-node store need not implement it.
type Leaser interface {
	// Lease takes the lease name for holder, or renews it when holder has
	// it already, until ttl from now. ok is false while another holder's
	// lease on name runs.
	Lease(ctx context.Context, name, holder string, ttl time.Duration) (ok bool, err error)
	// LeaseAll is Lease for many names at once, in one statement however
	// many there are (a node's webhook bots); it returns the names holder
	// holds afterwards.
	LeaseAll(ctx context.Context, names []string, holder string, ttl time.Duration) (held []string, err error)
	// Release ends holder's lease on name, if holder has it.
	Release(ctx context.Context, name, holder string) error
}

// Rates is implemented by stores that several nodes share, so that an
// abuse limit counts one user's requests on every node together. Each
// key is a token bucket that gains a token every interval and holds at
// most burst.
type Rates interface {
	// TakeToken spends one token from bucket key when spend is true, or
	// only looks when it is false. wait is zero when a token was there
	// (and, with spend, is now gone); otherwise nothing is spent and wait
	// is how long until one is.
	TakeToken(ctx context.Context, key string, every time.Duration, burst int, spend bool) (wait time.Duration, err error)
	// PruneTokens forgets buckets that are full again, which is the same
	// as never having spent from them.
	PruneTokens(ctx context.Context) error
}

// TokenReturner is implemented by Rates that can give a spent token
// back, for limits that count only failures but must be spent before the
// work they guard (a login's token is spent before its password is
// hashed and given back if the password was right).
type TokenReturner interface {
	// ReturnToken undoes one TakeToken of key that spent a token.
	ReturnToken(ctx context.Context, key string, every time.Duration) error
}

// Moderation is what trust and safety needs from the store. It is separate
// from Store so a store can be brought up without it; the SQLite store
// implements both.
type Moderation interface {
	// SetUserRole grants or removes a server role ("" or herald.RoleModerator).
	SetUserRole(ctx context.Context, userID int64, role string) error
	// Suspend suspends a user until the given time (zero: lift the
	// suspension) and deletes every device of theirs, so their sessions end.
	Suspend(ctx context.Context, userID int64, until time.Time, reason string, at time.Time) error
	// SuspendedSince lists users suspended at or after t.
	SuspendedSince(ctx context.Context, t time.Time) ([]int64, error)
	// SetTakedown takes a chat down (or restores it) with a reason.
	SetTakedown(ctx context.Context, chatID int64, down bool, reason string) error
	// Block makes userID block (or unblock) blockedID.
	Block(ctx context.Context, userID, blockedID int64, on bool, at time.Time) error
	// Blocked reports whether userID blocked blockedID.
	Blocked(ctx context.Context, userID, blockedID int64) (bool, error)
	// CreateReport stores a report.
	CreateReport(ctx context.Context, r herald.Report) (herald.Report, error)
	// Reports lists reports with the given status ("" for all), newest first.
	Reports(ctx context.Context, status string, limit int) ([]herald.Report, error)
	// Report returns one report. NotFound.
	Report(ctx context.Context, id int64) (herald.Report, error)
	// ResolveReports sets the status of every open report on the same
	// target as the given one.
	ResolveReports(ctx context.Context, kind herald.ReportKind, user, chat, seq int64, status string) error
	// AppendAudit adds an entry to the append-only audit log.
	AppendAudit(ctx context.Context, e herald.AuditEntry) error
	// Audit returns the newest entries of the audit log, newest first.
	Audit(ctx context.Context, limit int) ([]herald.AuditEntry, error)
	// Setting and SetSetting keep server settings such as the rules text.
	Setting(ctx context.Context, key string) (string, error)
	SetSetting(ctx context.Context, key, value string) error
}
