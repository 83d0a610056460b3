// Package herald holds Herald's domain: the types every other package
// speaks (users, devices, chats, messages, updates), their limits, and the
// error kinds that cross every boundary. It imports none of its
// subpackages; everything else points inward to it.
package herald

import "time"

// Limits users run into. They match Telegram's where Telegram has one, so a
// person moving between the two meets no surprises.
const (
	MaxTextRunes      = 4096                 // characters in a text message
	MaxTitleRunes     = 128                  // characters in a group title
	MaxDisplayName    = 64                   // characters in a display name
	MaxPasswordBytes  = 1024                 // longer passwords are refused rather than hashed
	MinPasswordBytes  = 8                    //
	EditWindow        = 48 * time.Hour       // how long a sender may edit a message
	MaxHistoryPage    = 200                  // messages per history page
	MaxDifferencePage = 1000                 // updates per sync page
	MaxGroupMembers   = 200000               // Telegram's supergroup limit
	MaxDeviceName     = 64                   // characters in a device name
	MaxForward        = 100                  // messages forwarded in one request
	MaxBatchIDs       = 100                  // ids in one delete request
	MaxNewMembers     = 200                  // users added in one request
	MinTokenBytes     = 32                   // bearer tokens are 256-bit
	MaxInviteCodeLen  = 64                   //
	MaxUsernameRunes  = 32                   //
	MinUsernameRunes  = 5                    //
	DefaultListLimit  = 50                   //
	MaxChatsPage      = 500                  // chat-list lines per page, and the page of a client that names no limit
	FanOutOnWriteMax  = 1000                 // groups larger than this fan out on read (see docs/ARCHITECTURE.md)
	MinTTL            = time.Second          // shortest self-destruct timer
	MaxTTL            = 7 * 24 * time.Hour   // longest self-destruct timer, and the longest an unread one lives
	MinAutoDelete     = time.Hour            // shortest chat auto-delete timer
	MaxAutoDelete     = 365 * 24 * time.Hour // longest chat auto-delete timer
)
