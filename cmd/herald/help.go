package main

import (
	"fmt"
	"strings"
)

// usage is the CLI's contract in one place: `herald --help` prints it,
// `herald help COMMAND` prints one command's lines, and TestHelpIsREADME
// checks that the README's contract block is this text and that every
// command and flag in it exists. A new command gets its line here (and the
// same line in the README) and its function in commands.
const usage = `herald [--server URL] [--home DIR] [--json] COMMAND [ARGS]
  --server   default $HERALD_SERVER, else the server saved at login, else http://127.0.0.1:8080
  --home     default $HERALD_HOME, else the user config dir + /herald (credentials mode 0600)
  --json     one JSON object per line on stdout, errors as JSON on stderr
  help [COMMAND]                            this text, or the lines of one command
  signup USERNAME [--display-name NAME] [--device NAME] [--invite CODE]
                                            password (at least 8 characters) from $HERALD_PASSWORD, else
                                            prompted twice without echo; logs in
  login USERNAME [--device NAME]            password from $HERALD_PASSWORD, else prompted without echo
  logout                                    forget this device's session; fails if there is none
  whoami
  token                                     prints this device's bearer token (for curl and scripts)
  devices                                   list; ` + "`devices revoke ID`" + `
  chats                                     chat list with unread counts and muted state
  send TARGET TEXT... [--reply-to ID] [--ttl DURATION]   prints the new message's id
  send --file PATH TARGET [CAPTION...] [--reply-to ID] [--ttl DURATION]
                                            uploads (an interrupted upload resumes when run again) and sends; prints the id
  autodelete TARGET off|DURATION            chat-wide timer for new messages (1h … 365d)
  download FILE_ID [-o PATH] [--output PATH]   resumes a partial download; checks the SHA-256
  link FILE_ID [--ttl DURATION]             a download link that needs no token (default 1 hour)
  history TARGET [--limit N] [--before ID]  oldest first; --before pages back from a message id
  listen [--count N] [--timeout DURATION] [--catch-up] [--all]
                                            prints incoming messages as they arrive; exits after N or on timeout
  read TARGET                               mark everything read
  edit TARGET ID TEXT...
  react TARGET ID EMOJI                     toggle a reaction (again to take it off); prints the message's reactions
  pin TARGET ID | unpin TARGET ID           admins in groups and channels, both people in a direct chat
  pins TARGET                               the chat's pinned messages, newest pin first
  delete TARGET ID... [--for-everyone]
  clear TARGET [--for-everyone]             delete the whole history (both sides: direct chats only)
  report TARGET --reason violence|spam|scam|illegal|other [--message ID] [--note TEXT] [--evidence TEXT]
  appeal TARGET [--note TEXT]               ask the moderators to look again at an action on your content
  block @user | unblock @user               a blocked user cannot message you or add you to groups
  rules                                     the server's rules
  forward TARGET ID... --to TARGET [--hide-author]   --hide-author: copies that do not name the author
  group create TITLE [@user ...]            prints the chat id
  group add TARGET @user ... | group remove TARGET @user ...
  group promote TARGET @user | group demote TARGET @user     owner only: make or unmake an admin
  group title TARGET TITLE...               owner and admins; members see "@you changed the title to …"
  leave TARGET                              leave a group or channel
  channel create NAME [--title TITLE] [--description TEXT] [--private]
                                            prints the chat id; a private channel has no @name
  channel info TARGET                       title, @name, description, subscribers, your role
  channel admins TARGET add|remove @user ...    owner only
  channel invite TARGET [--revoke CODE]     prints a new invite code, or revokes CODE
  channel set TARGET [--signatures on|off] [--title TITLE] [--description TEXT]
  channel mute|unmute TARGET                same as mute / unmute
  join @channel | join CODE                 subscribe by name (public) or invite code; prints the chat id
  mute TARGET | unmute TARGET               a muted chat gets no pushes; it stays readable
  push add ENDPOINT [--p256dh KEY --auth SECRET]
                                            register a Web Push / UnifiedPush endpoint for this device; without
                                            keys the CLI makes them and keeps the private key in its home
  push list | push remove ENDPOINT          the account's push endpoints (--json: lines with endpoint)
  bot create NAME [--name DISPLAY]          prints the new bot's token (NAME ends in "bot"); shown only now
  bot token NAME --rotate                   prints a new token; the old one stops working at once
  bot list | bot delete NAME                your bots; delete ends the token and leaves every group and channel
  bot privacy NAME on|off                   on (default): in groups the bot sees commands, replies and mentions only
  press TARGET ID BUTTON [--wait DURATION]  press an inline button of a bot's message (by text, callback data
                                            or number); prints the bot's answer (waits 10s by default)
  secret start @user                        end-to-end encrypted chat (Signal protocol); prints its id
  secret send @user TEXT [--ttl DURATION] [--file PATH]
                                            encrypted on this device for every device of both; prints the id
  secret history @user                      decrypted from this device's own store
  secret verify @user [--confirm]           the safety number to compare in person; --confirm marks it verified
  secret accept @user                       trust a device's new identity key after KEY_CHANGED; prints as verify
  secret download @user MSG_ID -o FILE      decrypts the file of message MSG_ID (its id in secret history --json),
                                            checks its SHA-256, prints FILE
  secret group create TITLE @user...        end-to-end encrypted group (sender keys); prints its id, sg-N;
                                            send, history and download take sg-N wherever they take @user
  secret group add|remove sg-N @user        admins only; every member's device sees who changed what
  secret group leave sg-N
TARGET: @name (the direct chat with that user, or a public channel) or a numeric chat id.
`

// helpFor returns the lines of usage that describe command name (with
// their continuation lines), or "" if there is no such command.
func helpFor(name string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.SplitAfter(usage, "\n") {
		switch {
		case strings.HasPrefix(line, "  "+name+" ") || strings.TrimSpace(line) == name ||
			strings.HasPrefix(line, "  ") && strings.Contains(line[:min(len(line), 44)], "| "+name+" "):
			in = true
		case strings.HasPrefix(line, "   ") && !strings.HasPrefix(strings.TrimSpace(line), "--"):
			// a continuation of the line before
		default:
			in = false
		}
		if in {
			b.WriteString(line)
		}
	}
	return b.String()
}

func cmdHelp(c *cli, args []string) error {
	if len(args) == 0 {
		_, err := fmt.Fprint(c.stdout, usage)
		return err
	}
	if len(args) > 1 {
		return usageError{"usage: herald help [COMMAND]"}
	}
	h := helpFor(args[0])
	if h == "" {
		return usageError{fmt.Sprintf("unknown command %q (herald --help lists them)", args[0])}
	}
	_, err := fmt.Fprint(c.stdout, h+"TARGET: @name (the direct chat with that user, or a public channel) or a numeric chat id.\n")
	return err
}
