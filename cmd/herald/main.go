// Command herald is Herald's command-line client. Its commands, flags and
// output are a contract for scripts; see the README.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/heraldim/herald"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

const usage = `usage: herald [--server URL] [--home DIR] [--json] COMMAND [ARGS]

  signup USERNAME [--display-name NAME] [--device NAME] [--invite CODE]
  login USERNAME [--device NAME]
  logout
  whoami
  token
  devices                     list this account's devices; devices revoke ID
  chats                       chat list with unread counts
  send [--ttl DURATION] TARGET TEXT...   prints the new message's id
  send --file PATH TARGET [CAPTION...]   uploads (resuming an interrupted upload), sends; prints the id
  download FILE_ID [-o PATH]             resumes a partial download; checks the SHA-256
  link FILE_ID [--ttl DURATION]          a download link that needs no token (default 1h)
  autodelete TARGET off|DURATION         chat-wide timer for new messages (1h … 365d)
  history TARGET [--limit N]  oldest first
  listen [--count N] [--timeout DURATION] [--catch-up] [--all]
  read TARGET                 mark everything read
  edit TARGET ID TEXT...
  delete TARGET ID... [--for-everyone]
  clear TARGET [--for-everyone]    delete the whole history (both sides: direct chats only)
  forward TARGET ID... --to TARGET
  group create TITLE [@user ...]   prints the chat id
  group add CHAT @user ... | group remove CHAT @user ...
  group promote CHAT @user | group demote CHAT @user
  leave CHAT
  channel create|info|admins|invite|set|mute|unmute ...   (herald channel for details)
  join @channel | join INVITE-CODE
  mute TARGET | unmute TARGET
  report TARGET --reason violence|spam|scam|illegal|other [--message ID] [--note TEXT] [--evidence TEXT]
  appeal TARGET [--note TEXT]      ask the moderators to look again at an action on your content
  block @user | unblock @user      a blocked user cannot message you or add you to groups
  rules                            the server's rules
  bot create NAME [--name DISPLAY] prints the new bot's token (NAME ends in "bot")
  bot token NAME --rotate          prints a new token; the old one stops working at once
  bot list | bot delete NAME | bot privacy NAME on|off
  press TARGET ID BUTTON [--wait DURATION]   press a bot's inline button (its data, text or number); prints the bot's answer
  secret start @user               end-to-end encrypted chat (Signal protocol); prints its id
  secret send @user TEXT [--ttl 10s] [--file PATH]   encrypted on this device for every device of both
  secret history @user             decrypted from this device's own store
  secret verify @user [--confirm]  the safety number to compare in person
  secret accept @user              trust a device's new identity key after a KEY_CHANGED error
  secret download @user MSG_ID -o FILE   decrypt a secret message's file (MSG_ID from secret history --json)

TARGET is @username (the direct chat with that user) or a numeric chat id.
The password comes from $HERALD_PASSWORD, else it is asked for.
`

// cli is one invocation's settings and streams.
type cli struct {
	server    string
	serverSet bool
	home      string
	json      bool
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	getenv    func(string) string
}

// usageError is a mistake in the command line itself.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	c.server = getenv("HERALD_SERVER")
	c.serverSet = c.server != ""
	if c.server == "" {
		c.server = "http://127.0.0.1:8080"
	}
	c.home = getenv("HERALD_HOME")
	if c.home == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			dir = "."
		}
		c.home = filepath.Join(dir, "herald")
	}
	// Global flags may come anywhere on the line.
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			rest = append(rest, a)
			continue
		}
		switch name {
		case "json":
			c.json = true
		case "server", "home":
			if !hasVal {
				if i+1 >= len(args) {
					return c.fail(usageError{"--" + name + " needs a value"})
				}
				i++
				val = args[i]
			}
			if name == "server" {
				c.server, c.serverSet = val, true
			} else {
				c.home = val
			}
		case "h", "help":
			fmt.Fprint(stdout, usage)
			return 0
		default:
			rest = append(rest, a)
		}
	}
	if len(rest) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, ok := commands[rest[0]]
	if !ok {
		return c.fail(usageError{fmt.Sprintf("unknown command %q (herald --help lists them)", rest[0])})
	}
	if err := cmd(ctx, c, rest[1:]); err != nil {
		return c.fail(err)
	}
	return 0
}

// fail prints err as the contract says: one line naming the kind and the
// cause, or with --json one JSON object, on stderr.
func (c *cli) fail(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		if c.json {
			json.NewEncoder(c.stderr).Encode(map[string]string{"error": "USAGE: " + ue.msg, "kind": "USAGE", "message": ue.msg})
		} else {
			fmt.Fprintf(c.stderr, "herald: %s\n", ue.msg)
		}
		return 2
	}
	kind := herald.ErrorKind(err)
	msg := herald.ErrorMessage(err)
	var he *herald.Error
	if errors.As(err, &he) && he.Msg != "" {
		msg = he.Msg
	} else if !errors.As(err, &he) {
		msg = err.Error() // a local failure (file, terminal): say what it was
	}
	if c.json {
		out := map[string]any{"error": string(kind) + ": " + msg, "kind": string(kind), "message": msg}
		if he != nil && he.RetryAfter > 0 {
			out["retry_after_ms"] = he.RetryAfter.Milliseconds()
		}
		json.NewEncoder(c.stderr).Encode(out)
	} else {
		fmt.Fprintf(c.stderr, "herald: %s: %s\n", kind, msg)
	}
	return 1
}
