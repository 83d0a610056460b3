package client

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/fingerprint"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/protocol"
	"google.golang.org/protobuf/proto"
)

// Trust in a secret chat is pinned per device, as Signal does: the first
// identity key seen for a (user, device) address is kept under "trust/",
// and the safety number is computed from exactly those pinned keys, the
// ones the sessions use. A different key later for the same address is a
// key change: it is kept under "pending/" and nothing is encrypted to or
// decrypted from that device (its messages wait under "held/") until the
// person accepts it with Accept.

// keyChangedError is what a send or a receive reports while a device of
// the chat has an identity key that was not accepted.
func keyChangedError(who string, device int64) error {
	if who == "" {
		return herald.Errorf(herald.KeyChanged, "the safety number of your own device %d changed: verify it again or accept the change; nothing is sent to it or read from it until then", device)
	}
	return herald.Errorf(herald.KeyChanged, "@%s's safety number changed: verify again or accept (device %d has a new identity key; nothing is sent to it or read from it until then)", who, device)
}

// markChanged records that addr presented key, which is not the pinned
// one; the verified mark of the chat with its user goes. The store is
// locked.
func (s *Secret) markChanged(addr *protocol.SignalAddress, key *identity.Key) error {
	if err := s.kv.Put("pending/"+addrKey(addr), key.Serialize()); err != nil {
		return err
	}
	uid, _ := strconv.ParseInt(addr.Name(), 10, 64)
	if me, _ := s.c.Self(); uid == me {
		return nil
	}
	p, err := s.loadPeer(uid)
	if err != nil || p.Username == "" {
		return err
	}
	p.Verified, p.Changed = false, true
	return s.savePeer(p)
}

// changedDevices lists the devices of user whose key change waits to be
// accepted. The store is locked.
func (s *Secret) changedDevices(user int64, among []int64) ([]int64, error) {
	keys, err := s.kv.Keys("pending/" + strconv.FormatInt(user, 10) + ".")
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, k := range keys {
		d, err := strconv.ParseInt(k[strings.LastIndexByte(k, '.')+1:], 10, 64)
		if err == nil && (among == nil || slices.Contains(among, d)) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out, nil
}

// checkUnchanged refuses to encrypt for a chat while one of its devices
// has a key change not accepted. The store is locked.
func (s *Secret) checkUnchanged(peer *peerInfo) error {
	me, _ := s.c.Self()
	for _, t := range []struct {
		user    int64
		who     string
		devices []int64
	}{{peer.ID, peer.Username, peer.Devices}, {me, "", peer.Own}} {
		ds, err := s.changedDevices(t.user, t.devices)
		if err != nil {
			return err
		}
		if len(ds) > 0 {
			return keyChangedError(t.who, ds[0])
		}
	}
	return nil
}

// PendingChange returns the sentence to show while a device in the
// secret chat with peer has a new identity key waiting for Accept, and
// "" when none does. It asks nothing of the server.
func (s *Secret) PendingChange(ctx context.Context, peer int64) (string, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	p, err := s.loadPeer(peer)
	if err != nil {
		return "", err
	}
	if err := s.checkUnchanged(p); err != nil {
		if herald.IsKind(err, herald.KeyChanged) {
			return herald.ErrorMessage(err), nil
		}
		return "", err
	}
	return "", nil
}

// hold keeps an envelope from a device whose key changed, to be opened
// if the change is accepted. The store is locked.
func (s *Secret) hold(addr *protocol.SignalAddress, e *pb.Envelope) error {
	b, err := proto.Marshal(e)
	if err != nil {
		return err
	}
	return s.kv.Put("held/"+addrKey(addr)+"/"+strconv.FormatInt(e.Id, 10), b)
}

// Accept trusts the new identity keys of username's devices (and of this
// user's other devices) that changed since they were first seen: the
// sessions with them start again with the new keys, messages held from
// them are opened, and the safety number is shown again, not verified.
// Compare it first (SafetyNumber, in person): accepting a key a server
// made up lets that server read the chat.
func (s *Secret) Accept(ctx context.Context, username string) (SafetyNumber, error) {
	u, err := s.resolve(ctx, username)
	if err != nil {
		return SafetyNumber{}, err
	}
	self, err := s.selfName(ctx)
	if err != nil {
		return SafetyNumber{}, err
	}
	me, _ := s.c.Self()
	if u.Id == me {
		return SafetyNumber{}, herald.Errorf(herald.Invalid, "a secret chat is between two people: accept a change of your own device in the chat where it was shown")
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return SafetyNumber{}, err
	}
	defer unlock()
	type change struct {
		user int64
		name string
		devs []int64
	}
	var changes []change
	for _, t := range []change{{u.Id, u.Username, nil}, {me, self, nil}} {
		ds, err := s.changedDevices(t.user, nil)
		if err != nil {
			return SafetyNumber{}, err
		}
		for _, d := range ds {
			addr := protocol.NewSignalAddress(strconv.FormatInt(t.user, 10), uint32(d))
			b, ok, err := s.kv.Get("pending/" + addrKey(addr))
			if err != nil || !ok {
				continue
			}
			pub, err := ecc.DecodePoint(b, 0)
			if err != nil {
				s.kv.Delete("pending/" + addrKey(addr))
				continue
			}
			if err := s.sig.SaveIdentity(ctx, addr, identity.NewKey(pub)); err != nil {
				return SafetyNumber{}, err
			}
			if err := s.sig.DeleteSession(ctx, addr); err != nil {
				return SafetyNumber{}, err
			}
			if err := s.kv.Delete("pending/" + addrKey(addr)); err != nil {
				return SafetyNumber{}, err
			}
			t.devs = append(t.devs, d)
		}
		changes = append(changes, t)
	}
	if len(changes[0].devs)+len(changes[1].devs) == 0 {
		return SafetyNumber{}, herald.Errorf(herald.NotFound, "no key change of @%s waits to be accepted", u.Username)
	}
	for _, t := range changes {
		for _, d := range t.devs {
			if err := s.openHeld(ctx, protocol.NewSignalAddress(strconv.FormatInt(t.user, 10), uint32(d))); err != nil {
				return SafetyNumber{}, err
			}
		}
		// Devices whose held messages did not start a session get one
		// from a fresh bundle, which must carry the key just accepted.
		var need []int64
		for _, d := range t.devs {
			if ok, _ := s.sig.ContainsSession(ctx, protocol.NewSignalAddress(strconv.FormatInt(t.user, 10), uint32(d))); !ok {
				need = append(need, d)
			}
		}
		if len(need) > 0 {
			if _, err := s.buildSessions(ctx, t.name, need); err != nil {
				return SafetyNumber{}, err
			}
		}
	}
	p, err := s.loadPeer(u.Id)
	if err != nil {
		return SafetyNumber{}, err
	}
	p.Username = u.Username
	p.Verified, p.Changed = false, true
	if _, err := s.updateSafety(ctx, p); err != nil {
		return SafetyNumber{}, err
	}
	return s.safetyOf(p)
}

// openHeld opens the envelopes held from addr while its key change
// waited, in the order they came. The store is locked.
func (s *Secret) openHeld(ctx context.Context, addr *protocol.SignalAddress) error {
	keys, err := s.kv.Keys("held/" + addrKey(addr) + "/")
	if err != nil {
		return err
	}
	id := func(k string) int64 { n, _ := strconv.ParseInt(k[strings.LastIndexByte(k, '/')+1:], 10, 64); return n }
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(id(a), id(b)) })
	for _, k := range keys {
		b, ok, err := s.kv.Get(k)
		if err != nil {
			return err
		}
		if err := s.kv.Delete(k); err != nil {
			return err
		}
		var e pb.Envelope
		if !ok || proto.Unmarshal(b, &e) != nil {
			continue
		}
		ev, err := s.open(ctx, &e)
		switch {
		case err != nil:
			s.emit(SecretEvent{Err: err})
		case ev != nil:
			s.emit(*ev)
		}
	}
	return nil
}

// pinned returns the identity keys pinned for user's devices; a device
// with none pinned yet (no session) is left out.
func (s *Secret) pinned(user int64, devices []int64) ([][]byte, error) {
	var keys [][]byte
	for _, d := range devices {
		b, ok, err := s.kv.Get("trust/" + strconv.FormatInt(user, 10) + "." + strconv.FormatInt(d, 10))
		if err != nil {
			return nil, err
		}
		if ok {
			keys = append(keys, b)
		}
	}
	return keys, nil
}

// computeSafety computes the safety number with peer from the identity
// keys this device's sessions use: its own, those pinned for its other
// devices, and those pinned for the peer's devices. Nothing the server
// says now enters it, so a server that handed out its own keys when the
// sessions were made cannot make the two sides' numbers agree.
func (s *Secret) computeSafety(peer *peerInfo) (string, error) {
	if s.sig.id == nil {
		return "", herald.Errorf(herald.Unavailable, "this device has no secret-chat keys yet")
	}
	me, _ := s.c.Self()
	mine, err := s.pinned(me, peer.Own)
	if err != nil {
		return "", err
	}
	mine = append(mine, s.sig.id.PublicKey().Serialize())
	theirs, err := s.pinned(peer.ID, peer.Devices)
	if err != nil {
		return "", err
	}
	d := fingerprint.NewDisplay(half(me, mine), half(peer.ID, theirs)).DisplayText()
	var groups []string
	for i := 0; i+5 <= len(d); i += 5 {
		groups = append(groups, d[i:i+5])
	}
	return strings.Join(groups, " "), nil
}

// safetyOf is the safety number with peer as last computed. The store is
// locked.
func (s *Secret) safetyOf(p *peerInfo) (SafetyNumber, error) {
	err := s.checkUnchanged(p)
	if err != nil && !herald.IsKind(err, herald.KeyChanged) {
		return SafetyNumber{}, err
	}
	sn := SafetyNumber{Number: p.Safety, Verified: p.Verified && err == nil, Changed: p.Changed}
	if err != nil {
		sn.KeyChanged = herald.ErrorMessage(err)
	}
	return sn, nil
}

// syncDevices brings the chat's device lists up to what the server says
// now (ids only: keys come from bundles and messages, checked against
// the pinned ones), so that both sides' safety numbers cover the same
// devices. The store is locked.
func (s *Secret) syncDevices(ctx context.Context, u *pb.User, self string, p *peerInfo) error {
	me, _ := s.c.Self()
	st := &herald.StaleDevicesError{}
	for _, t := range []struct {
		user  int64
		name  string
		known []int64
	}{{u.Id, u.Username, p.Devices}, {me, self, p.Own}} {
		var l pb.IdentityList
		if err := s.c.Call(ctx, "keys.identities", &pb.IdentitiesRequest{Username: t.name}, &l); err != nil {
			return err
		}
		set := herald.DeviceSet{UserID: t.user}
		for _, d := range l.Devices {
			if t.user == me && d.DeviceId == s.selfDevice() {
				continue
			}
			set.Devices = append(set.Devices, d.DeviceId)
			if !slices.Contains(t.known, d.DeviceId) {
				st.Missing = append(st.Missing, d.DeviceId)
			}
		}
		for _, d := range t.known {
			if !slices.Contains(set.Devices, d) {
				st.Extra = append(st.Extra, d)
			}
		}
		st.Current = append(st.Current, set)
	}
	if len(st.Missing) == 0 && len(st.Extra) == 0 {
		return nil
	}
	return s.applyDevices(ctx, u, self, p, st)
}

func (s *Secret) selfDevice() int64 { _, d := s.c.Self(); return d }
