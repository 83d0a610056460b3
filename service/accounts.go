package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/heraldim/herald"
	"golang.org/x/crypto/argon2"
)

// PasswordCost holds Argon2id parameters.
type PasswordCost struct {
	Time    uint32
	MemoryK uint32 // KiB
	Threads uint8
}

// DefaultPasswordCost follows OWASP's Argon2id recommendation (19 MiB,
// two passes, one lane).
var DefaultPasswordCost = PasswordCost{Time: 2, MemoryK: 19 * 1024, Threads: 1}

// hash runs Argon2id; callers go through passwords.hash, which bounds how
// many run at once.
func (c PasswordCost) hash(password string) []byte {
	salt := make([]byte, 16)
	rand.Read(salt)
	return phc(c, salt, argon2.IDKey([]byte(password), salt, c.Time, c.MemoryK, c.Threads, 32))
}

// checkPassword verifies password against a PHC-format Argon2id hash, using
// the parameters stored with it.
func checkPassword(encoded []byte, password string) bool {
	parts := strings.Split(string(encoded), "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var c PasswordCost
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &c.MemoryK, &c.Time, &c.Threads); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, c.Time, c.MemoryK, c.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// Session is what signup and login return: the account, the new device and
// its bearer token (shown once, stored only as a hash).
type Session struct {
	User   herald.User
	Device herald.Device
	Token  string
	Pts    int64
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func validatePassword(p string) error {
	if len(p) < herald.MinPasswordBytes {
		return herald.Errorf(herald.Invalid, "a password has at least %d characters", herald.MinPasswordBytes)
	}
	if len(p) > herald.MaxPasswordBytes {
		return herald.Errorf(herald.TooLarge, "a password has at most %d bytes", herald.MaxPasswordBytes)
	}
	if !utf8.ValidString(p) {
		return herald.Errorf(herald.Invalid, "the password is not valid UTF-8")
	}
	return nil
}

func deviceName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "unnamed device"
	}
	return name, herald.ValidateName("device name", name, herald.MaxDeviceName)
}

// Signup creates an account and logs its first device in.
func (s *Service) Signup(ctx context.Context, username, password, displayName, device, invite string) (Session, error) {
	username = herald.NormalizeUsername(username)
	if err := herald.ValidateUsername(username); err != nil {
		return Session{}, err
	}
	if err := validatePassword(password); err != nil {
		return Session{}, err
	}
	displayName = strings.TrimSpace(displayName)
	if displayName == "" {
		displayName = username
	}
	if err := herald.ValidateName("display name", displayName, herald.MaxDisplayName); err != nil {
		return Session{}, err
	}
	device, err := deviceName(device)
	if err != nil {
		return Session{}, err
	}
	switch s.signup {
	case SignupClosed:
		return Session{}, herald.Errorf(herald.PermissionDenied, "signup is closed on this server")
	case SignupInvite:
		if invite == "" {
			return Session{}, herald.Errorf(herald.PermissionDenied, "signup on this server needs an invite code")
		}
		if len(invite) > herald.MaxInviteCodeLen {
			return Session{}, herald.Errorf(herald.NotFound, "the invite code is unknown or already used")
		}
	default:
		invite = ""
	}
	hash, err := s.pw.hash(ctx, password)
	if err != nil {
		return Session{}, err
	}
	u, err := s.store.CreateUser(ctx, herald.User{Username: username, DisplayName: displayName, CreatedAt: s.now()}, hash, invite)
	if err != nil {
		return Session{}, err
	}
	return s.newDevice(ctx, u, device)
}

// SignupFrom is Signup for a client at a network address, which may create
// only so many accounts per hour.
func (s *Service) SignupFrom(ctx context.Context, addr, username, password, displayName, device, invite string) (Session, error) {
	if err := s.rl.signup.take(ctx, clientKey(addr)); err != nil {
		return Session{}, err
	}
	return s.Signup(ctx, username, password, displayName, device, invite)
}

// CreateInvite makes a single-use signup code (for -signup invite).
func (s *Service) CreateInvite(ctx context.Context) (string, error) {
	b := make([]byte, 12)
	rand.Read(b)
	code := base64.RawURLEncoding.EncodeToString(b)
	return code, s.store.CreateInvite(ctx, code, s.now())
}

// newDevice adds a device for u, at most MaxDevices at once: a password
// must not make rows without end. The count is read only after the
// password is proven, so it tells a guesser nothing.
func (s *Service) newDevice(ctx context.Context, u herald.User, name string) (Session, error) {
	devs, err := s.store.Devices(ctx, u.ID)
	if err != nil {
		return Session{}, err
	}
	if len(devs) >= s.rl.maxDevices {
		return Session{}, herald.Errorf(herald.PermissionDenied, "this account has %d devices, the most it may have; revoke one first (devices, then devices revoke ID, on a logged-in device)", len(devs))
	}
	raw := make([]byte, herald.MinTokenBytes)
	rand.Read(raw)
	token := base64.RawURLEncoding.EncodeToString(raw)
	now := s.now()
	d, err := s.store.CreateDevice(ctx, herald.Device{UserID: u.ID, Name: name, CreatedAt: now, LastSeen: now}, hashToken(token))
	if err != nil {
		return Session{}, err
	}
	pts, err := s.store.Pts(ctx, u.ID)
	if err != nil {
		return Session{}, err
	}
	return Session{User: u, Device: d, Token: token, Pts: pts}, nil
}

// Login checks a password and creates a device. addr is the client's
// network address, for throttling.
func (s *Service) Login(ctx context.Context, username, password, device, addr string) (Session, error) {
	username = herald.NormalizeUsername(username)
	device, err := deviceName(device)
	if err != nil {
		return Session{}, err
	}
	if len(username) > herald.MaxUsernameRunes || len(password) > herald.MaxPasswordBytes {
		return Session{}, herald.Errorf(herald.Unauthenticated, "wrong username or password")
	}
	// A token of each failure budget is spent before the hash, so that a
	// burst of guesses sent at once meets the budget as a sequence would,
	// and given back once the password proves right.
	addr = clientKey(addr)
	if err := s.rl.loginName.take(ctx, username); err != nil {
		return Session{}, err
	}
	if err := s.rl.loginAddr.take(ctx, addr); err != nil {
		s.rl.loginName.giveBack(ctx, username)
		return Session{}, err
	}
	refund := func() {
		s.rl.loginName.giveBack(ctx, username)
		s.rl.loginAddr.giveBack(ctx, addr)
	}
	u, hash, err := s.store.UserByName(ctx, username)
	if herald.IsKind(err, herald.NotFound) {
		// An unknown name is checked against a dummy hash: the same one
		// evaluation, so timing does not reveal which usernames exist.
		hash, err = nil, nil
	}
	if err != nil {
		return Session{}, err
	}
	ok, err := s.pw.check(ctx, hash, password)
	if err != nil {
		refund() // too busy to check: not a failure of this password
		return Session{}, err
	}
	if !ok || hash == nil {
		return Session{}, herald.Errorf(herald.Unauthenticated, "wrong username or password")
	}
	refund()
	if u.Suspended(s.now()) {
		return Session{}, herald.Errorf(herald.PermissionDenied, "this account is suspended until %s: %s",
			u.SuspendedUntil.Format("2006-01-02 15:04 MST"), u.SuspendReason)
	}
	return s.newDevice(ctx, u, device)
}

// Authenticate resolves a bearer token to its device.
func (s *Service) Authenticate(ctx context.Context, token string) (Caller, error) {
	if token == "" || len(token) > 128 {
		return Caller{}, herald.Errorf(herald.Unauthenticated, "a valid token is required")
	}
	d, err := s.store.DeviceByToken(ctx, hashToken(token))
	if herald.IsKind(err, herald.NotFound) {
		return Caller{}, herald.Errorf(herald.Unauthenticated, "the token is invalid or its device was logged out")
	}
	if err != nil {
		return Caller{}, err
	}
	u, err := s.user(ctx, d.UserID)
	if err != nil {
		return Caller{}, err
	}
	if err := s.store.TouchDevice(ctx, d.ID, s.now()); err != nil {
		s.log.Warn("touch device", "device", d.ID, "err", err)
	}
	return Caller{UserID: u.ID, DeviceID: d.ID, Username: u.Username}, nil
}

// Me returns the caller's account.
func (s *Service) Me(ctx context.Context, c Caller) (herald.User, error) {
	return s.user(ctx, c.UserID)
}

// Devices lists the caller's devices.
func (s *Service) Devices(ctx context.Context, c Caller) ([]herald.Device, error) {
	return s.store.Devices(ctx, c.UserID)
}

// RevokeDevice logs one of the caller's devices out; its live connections
// close at once, on every node.
func (s *Service) RevokeDevice(ctx context.Context, c Caller, deviceID int64) error {
	if err := s.store.DeleteDevice(ctx, c.UserID, deviceID); err != nil {
		return err
	}
	if s.secret != nil {
		// Its keys must not outlive it: SQLite may give its id to the
		// next device, which will publish keys of its own.
		if err := s.secret.ForgetDevice(ctx, deviceID); err != nil {
			return err
		}
	}
	s.emitRevoked(ctx, c.UserID, deviceID)
	return nil
}

// Logout revokes the caller's own device.
func (s *Service) Logout(ctx context.Context, c Caller) error {
	return s.RevokeDevice(ctx, c, c.DeviceID)
}

// ResolveUser finds a user by name.
func (s *Service) ResolveUser(ctx context.Context, username string) (herald.User, error) {
	name := herald.NormalizeUsername(username)
	if name == "" {
		return herald.User{}, herald.Errorf(herald.Invalid, "give a username")
	}
	if herald.ValidateUsername(name) != nil {
		// No account can have this name; answer as for any unknown name
		// (the name is echoed only when it is a plausible username).
		if len(name) > herald.MaxUsernameRunes || !utf8.ValidString(name) {
			return herald.User{}, herald.Errorf(herald.NotFound, "no such user")
		}
	}
	u, _, err := s.store.UserByName(ctx, name)
	if herald.IsKind(err, herald.NotFound) {
		return u, herald.Errorf(herald.NotFound, "no user @%s", name)
	}
	return u, err
}
