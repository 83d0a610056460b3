package service

import (
	"context"
	"slices"
	"time"

	"github.com/heraldim/herald"
)

// Secret groups (docs/SECRET.md). The server keeps the members, for
// fan-out, and who may change them; devices keep their own signed view of
// the membership, learnt from admins over pairwise Signal sessions, and
// refuse messages from anyone not in it. A group message is one
// sender-key ciphertext that the server copies to every member device.

// SecretGroupView is a secret group's membership as the server keeps it,
// with the members' usernames.
type SecretGroupView struct {
	ID      int64
	Members []herald.SecretGroupMember
	Names   map[int64]string
}

func (s *Service) secretGroupView(ctx context.Context, id int64, ms []herald.SecretGroupMember) SecretGroupView {
	ids := make([]int64, len(ms))
	for i, m := range ms {
		ids[i] = m.UserID
	}
	return SecretGroupView{ID: id, Members: ms, Names: s.UserNames(ctx, ids...)}
}

// secretMembers returns a secret group's members if the caller is one
// (NotFound otherwise: a non-member does not learn the group exists), and
// the caller's own entry.
func (s *Service) secretMembers(ctx context.Context, c Caller, groupID int64) ([]herald.SecretGroupMember, herald.SecretGroupMember, error) {
	if err := s.secretReady(); err != nil {
		return nil, herald.SecretGroupMember{}, err
	}
	ms, err := s.secret.SecretGroupMembers(ctx, groupID)
	if err != nil {
		return nil, herald.SecretGroupMember{}, err
	}
	i := slices.IndexFunc(ms, func(m herald.SecretGroupMember) bool { return m.UserID == c.UserID })
	if i < 0 {
		return nil, herald.SecretGroupMember{}, herald.Errorf(herald.NotFound, "no secret group %d among yours", groupID)
	}
	return ms, ms[i], nil
}

// CreateSecretGroup makes a secret group of the caller (its admin) and
// the users named. Each must be able to receive secret messages.
func (s *Service) CreateSecretGroup(ctx context.Context, c Caller, usernames []string) (SecretGroupView, error) {
	if err := s.secretReady(); err != nil {
		return SecretGroupView{}, err
	}
	if len(usernames)+1 > herald.MaxSecretGroupMembers {
		return SecretGroupView{}, herald.Errorf(herald.TooLarge, "a secret group has at most %d members", herald.MaxSecretGroupMembers)
	}
	if err := s.rl.direct.take(ctx, key(c.UserID)); err != nil {
		return SecretGroupView{}, err
	}
	var ids []int64
	for _, name := range usernames {
		u, err := s.secretPeer(ctx, c, name, true)
		if err != nil {
			return SecretGroupView{}, err
		}
		if u.ID != c.UserID && !slices.Contains(ids, u.ID) {
			ids = append(ids, u.ID)
		}
	}
	id, err := s.secret.CreateSecretGroup(ctx, c.UserID, ids, s.now())
	if err != nil {
		return SecretGroupView{}, err
	}
	ms, err := s.secret.SecretGroupMembers(ctx, id)
	return s.secretGroupView(ctx, id, ms), err
}

// SecretGroup returns the server's membership of a group the caller is in.
func (s *Service) SecretGroup(ctx context.Context, c Caller, groupID int64) (SecretGroupView, error) {
	ms, _, err := s.secretMembers(ctx, c, groupID)
	if err != nil {
		return SecretGroupView{}, err
	}
	return s.secretGroupView(ctx, groupID, ms), nil
}

// AddSecretGroupMember adds a user to a secret group; only admins may.
// The admin's devices then tell every member, over pairwise sessions,
// and distribute sender keys to the new member's devices.
func (s *Service) AddSecretGroupMember(ctx context.Context, c Caller, groupID int64, username string) (SecretGroupView, error) {
	ms, me, err := s.secretMembers(ctx, c, groupID)
	if err != nil {
		return SecretGroupView{}, err
	}
	if !me.Admin {
		return SecretGroupView{}, herald.Errorf(herald.PermissionDenied, "only the group's admins add members")
	}
	if len(ms) >= herald.MaxSecretGroupMembers {
		return SecretGroupView{}, herald.Errorf(herald.TooLarge, "a secret group has at most %d members", herald.MaxSecretGroupMembers)
	}
	if err := s.rl.members.take(ctx, key(c.UserID)); err != nil {
		return SecretGroupView{}, err
	}
	u, err := s.secretPeer(ctx, c, username, false)
	if err != nil {
		return SecretGroupView{}, err
	}
	if err := s.secret.AddSecretGroupMembers(ctx, groupID, []int64{u.ID}); err != nil {
		return SecretGroupView{}, err
	}
	return s.SecretGroup(ctx, c, groupID)
}

// RemoveSecretGroupMember takes a user out of a secret group: an admin
// removing anyone, or anyone leaving (username empty or their own).
func (s *Service) RemoveSecretGroupMember(ctx context.Context, c Caller, groupID int64, username string) (SecretGroupView, error) {
	_, me, err := s.secretMembers(ctx, c, groupID)
	if err != nil {
		return SecretGroupView{}, err
	}
	target := c.UserID
	if username != "" {
		u, err := s.ResolveUser(ctx, username)
		if err != nil {
			return SecretGroupView{}, err
		}
		target = u.ID
	}
	if target != c.UserID && !me.Admin {
		return SecretGroupView{}, herald.Errorf(herald.PermissionDenied, "only the group's admins remove members")
	}
	if err := s.rl.members.take(ctx, key(c.UserID)); err != nil {
		return SecretGroupView{}, err
	}
	ok, err := s.secret.RemoveSecretGroupMember(ctx, groupID, target)
	if err != nil {
		return SecretGroupView{}, err
	}
	if !ok {
		return SecretGroupView{}, herald.Errorf(herald.NotFound, "@%s is not in the group", herald.NormalizeUsername(username))
	}
	ms, err := s.secret.SecretGroupMembers(ctx, groupID)
	return s.secretGroupView(ctx, groupID, ms), err
}

// SecretGroupSend is one message to a secret group from the caller's
// device: one sender-key ciphertext for every member device.
type SecretGroupSend struct {
	GroupID int64
	Body    []byte
	TTL     time.Duration
	FileIDs []string
	// Devices are those the sender distributed its sender key to; they
	// must be exactly the members' devices with keys, but the sender's.
	Devices []herald.DeviceSet
}

// CheckSecretGroupSend checks a secret group message as it came off the
// wire: a ciphertext of at most herald.MaxEnvelopeBytes, a TTL that is not
// negative, at most 10 files and a device list of at most two devices per
// possible member on average. Its errors are INVALID_ARGUMENT or TOO_LARGE.
func CheckSecretGroupSend(p SecretGroupSend) error {
	if len(p.Body) == 0 {
		return herald.Errorf(herald.Invalid, "a secret group message needs a ciphertext")
	}
	if len(p.Body) > herald.MaxEnvelopeBytes {
		return herald.Errorf(herald.TooLarge, "a secret group message holds at most %d bytes, this one has %d", herald.MaxEnvelopeBytes, len(p.Body))
	}
	if p.TTL < 0 {
		return herald.Errorf(herald.Invalid, "the time to live is never negative")
	}
	if len(p.FileIDs) > 10 {
		return herald.Errorf(herald.TooLarge, "a secret message carries at most 10 files")
	}
	if len(p.Devices) > herald.MaxSecretGroupMembers {
		return herald.Errorf(herald.TooLarge, "a secret group has at most %d members", herald.MaxSecretGroupMembers)
	}
	n := 0
	for _, d := range p.Devices {
		n += len(d.Devices)
	}
	if n > 16*herald.MaxSecretGroupMembers {
		return herald.Errorf(herald.TooLarge, "the device list is too long")
	}
	return nil
}

// SendSecretGroup queues the caller's ciphertext for every device of
// every member (the caller's other devices included), as one envelope
// each. If the caller's device list is not the current one, nothing is
// stored and the error (a *herald.StaleDevicesError) lists the current
// devices: the sender distributes its key to new devices (and, if a
// device is gone, makes a new key) and sends again.
func (s *Service) SendSecretGroup(ctx context.Context, c Caller, p SecretGroupSend) ([]herald.Envelope, error) {
	if err := CheckSecretGroupSend(p); err != nil {
		return nil, err
	}
	ms, _, err := s.secretMembers(ctx, c, p.GroupID)
	if err != nil {
		return nil, err
	}
	if err := s.rl.direct.take(ctx, key(c.UserID)); err != nil {
		return nil, err
	}
	owner := map[int64]int64{}
	var cur []herald.DeviceSet
	for _, m := range ms {
		ks, err := s.secret.DeviceKeys(ctx, m.UserID)
		if err != nil {
			return nil, err
		}
		set := herald.DeviceSet{UserID: m.UserID}
		for _, k := range ks {
			if k.DeviceID != c.DeviceID {
				owner[k.DeviceID] = m.UserID
				set.Devices = append(set.Devices, k.DeviceID)
			}
		}
		cur = append(cur, set)
	}
	var missing, extra []int64
	named := map[int64]bool{}
	for _, set := range p.Devices {
		for _, d := range set.Devices {
			named[d] = true
			if owner[d] != set.UserID {
				extra = append(extra, d)
			}
		}
	}
	for d := range owner {
		if !named[d] {
			missing = append(missing, d)
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		return nil, herald.NewStaleDevices(missing, extra, cur)
	}
	var users []int64
	for _, m := range ms {
		if m.UserID != c.UserID {
			users = append(users, m.UserID)
		}
	}
	for _, id := range p.FileIDs {
		if !validFileID(id) {
			return nil, herald.Errorf(herald.NotFound, "no such file")
		}
		f, err := s.store.File(ctx, id)
		if err != nil || f.OwnerID != c.UserID {
			if err == nil || herald.IsKind(err, herald.NotFound) {
				return nil, herald.Errorf(herald.NotFound, "no such file among your uploads")
			}
			return nil, err
		}
		if err := s.secret.GrantFile(ctx, id, users); err != nil {
			return nil, err
		}
	}
	now := s.now()
	life := s.retention
	if p.TTL > 0 && p.TTL < life {
		life = p.TTL
	}
	envs := make([]herald.Envelope, 0, len(owner))
	for _, set := range cur {
		for _, d := range set.Devices {
			envs = append(envs, herald.Envelope{
				SenderID: c.UserID, SenderDevice: c.DeviceID, UserID: set.UserID, DeviceID: d,
				Type: herald.EnvelopeSenderKey, Body: p.Body, SentAt: now, ExpiresAt: now.Add(life), GroupID: p.GroupID,
			})
		}
	}
	if len(envs) == 0 {
		return nil, nil
	}
	stored, err := s.secret.Enqueue(ctx, envs)
	if err != nil {
		return nil, err
	}
	bg := context.WithoutCancel(ctx)
	for i := range stored {
		e := stored[i]
		s.emitEnvelope(bg, &e)
	}
	s.notifySecret(stored) // a content-free wake-up, as for secret chats
	return stored, nil
}
