package main

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/heraldim/herald/client"
)

const pushUsage = "usage: herald push add ENDPOINT [--p256dh KEY --auth SECRET] | herald push list | herald push remove ENDPOINT"

// PushKey is a subscription's keys as the CLI keeps them in its home
// (push-keys.json, mode 0600) when it made them itself: with the private
// key, a UnifiedPush receiver on this machine can decrypt what arrives.
type PushKey struct {
	Private string `json:"private"` // P-256 private key, base64url
	P256dh  string `json:"p256dh"`
	Auth    string `json:"auth"`
}

func (c *cli) pushKeysFile() string { return filepath.Join(c.home, "push-keys.json") }

func (c *cli) pushKeys() (map[string]PushKey, error) {
	m := map[string]PushKey{}
	b, err := os.ReadFile(c.pushKeysFile())
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	return m, json.Unmarshal(b, &m)
}

func (c *cli) savePushKeys(m map[string]PushKey) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.home, 0o700); err != nil {
		return err
	}
	tmp := c.pushKeysFile() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, c.pushKeysFile())
}

// newPushKey makes a subscription's key pair and auth secret as a
// browser does (RFC 8291: P-256 and 16 random bytes).
func newPushKey() (PushKey, error) {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return PushKey{}, err
	}
	auth := make([]byte, 16)
	if _, err := rand.Read(auth); err != nil {
		return PushKey{}, err
	}
	enc := base64.RawURLEncoding.EncodeToString
	return PushKey{Private: enc(k.Bytes()), P256dh: enc(k.PublicKey().Bytes()), Auth: enc(auth)}, nil
}

func cmdPush(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 {
		return usageError{pushUsage}
	}
	sub := args[0]
	spec := flagSpec{}
	if sub == "add" {
		spec.values = []string{"p256dh", "auth"}
	}
	p, err := parseArgs(args[1:], spec)
	if err != nil {
		return err
	}
	want := map[string]int{"add": 1, "list": 0, "remove": 1}
	if n, ok := want[sub]; !ok || len(p.args) != n {
		return usageError{pushUsage}
	}
	if sub == "add" && (p.vals["p256dh"] == "") != (p.vals["auth"] == "") {
		return usageError{"herald push add: give both --p256dh and --auth, or neither (the CLI then makes them)"}
	}
	return c.withClient(ctx, func(ctx context.Context, cl *client.Client, _ client.Credentials) error {
		switch sub {
		case "add":
			endpoint, key := p.args[0], PushKey{P256dh: p.vals["p256dh"], Auth: p.vals["auth"]}
			made := key.P256dh == ""
			if made {
				if key, err = newPushKey(); err != nil {
					return err
				}
			}
			if err := cl.PushSubscribe(ctx, endpoint, key.P256dh, key.Auth); err != nil {
				return err
			}
			if made {
				m, err := c.pushKeys()
				if err != nil {
					return err
				}
				m[endpoint] = key
				if err := c.savePushKeys(m); err != nil {
					return err
				}
			}
			if c.json {
				return c.printJSON(map[string]any{"endpoint": endpoint, "p256dh": key.P256dh, "auth": key.Auth})
			}
			fmt.Fprintf(c.stdout, "push endpoint added: %s\n", endpoint)
			return nil
		case "list":
			subs, err := cl.PushSubscriptions(ctx)
			if err != nil {
				return err
			}
			for _, s := range subs {
				if c.json {
					if err := c.printJSON(map[string]any{"endpoint": s.Endpoint, "device_id": s.DeviceId, "created_at": rfc3339(s.CreatedAt)}); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(c.stdout, "%s\tdevice %d\t%s\n", s.Endpoint, s.DeviceId, rfc3339(s.CreatedAt))
			}
			return nil
		default: // remove
			if err := cl.PushUnsubscribe(ctx, p.args[0]); err != nil {
				return err
			}
			if m, err := c.pushKeys(); err == nil {
				if _, ok := m[p.args[0]]; ok {
					delete(m, p.args[0])
					_ = c.savePushKeys(m)
				}
			}
			if !c.json {
				fmt.Fprintf(c.stdout, "push endpoint removed: %s\n", p.args[0])
			}
			return nil
		}
	})
}
