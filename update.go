package herald

import "time"

// UpdateKind says what changed. The numbers are stored; never reuse one.
type UpdateKind int

// Update kinds.
const (
	UpdNewMessage  UpdateKind = 1 // Message is set
	UpdEditMessage UpdateKind = 2 // Message is set
	UpdDelete      UpdateKind = 3 // Seqs were deleted in ChatID (for everyone, or for this user only)
	UpdReadInbox   UpdateKind = 4 // this user read ChatID up to Seq (on another device)
	UpdReadOutbox  UpdateKind = 5 // UserID read ChatID up to Seq: the user's messages up to there are seen
	UpdChatJoined  UpdateKind = 6 // this user became a member of ChatID (added by UserID)
	UpdChatLeft    UpdateKind = 7 // this user is no longer a member of ChatID (removed by UserID, or left)
	UpdMembers     UpdateKind = 8 // ActorID joined (Seq=1), left (Seq=0) or changed role (Seq=2) in ChatID
)

// Update is one entry of a user's update log, or of a broadcast chat's log
// when UserID is 0. Pts is the entry's number in that log: 1, 2, 3 … with
// no gaps, so a device that knows its last pts can ask for exactly what it
// missed.
//
// For UpdChatJoined of a broadcast chat, Seq is the chat log's position at
// the join: the device follows that chat's log from there.
type Update struct {
	UserID  int64 // whose log; 0 for a broadcast chat's log
	Pts     int64
	Kind    UpdateKind
	ChatID  int64
	Seq     int64
	Seqs    []int64
	ActorID int64 // who caused it, when that matters
	Message *Message
	At      time.Time
}

// Difference is a page of a user's update log.
type Difference struct {
	Updates []Update
	Pts     int64 // the log position after these updates
	More    bool  // another page follows
	TooLong bool  // the device is too far behind: reload the chat list and continue from Pts
}
