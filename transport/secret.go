package transport

import (
	"context"
	"errors"
	"time"

	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/service"
	"google.golang.org/protobuf/proto"
)

// secretMethods are the secret-chat methods (docs/SECRET.md); init adds
// them to the method table, so methods.go stays as it was.
var secretMethods = map[string]method{
	"keys.publish": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.PublishKeysRequest) (proto.Message, error) {
		st, err := c.srv.svc.PublishKeys(ctx, caller, keyUpload(r))
		return pbKeyStatus(st), err
	}),
	"keys.status": handler(true, func(ctx context.Context, c *conn, caller service.Caller, _ *pb.Empty) (proto.Message, error) {
		st, err := c.srv.svc.KeyStatus(ctx, caller)
		return pbKeyStatus(st), err
	}),
	"keys.identities": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.IdentitiesRequest) (proto.Message, error) {
		u, ks, err := c.srv.svc.Identities(ctx, caller, r.Username)
		if err != nil {
			return nil, err
		}
		out := &pb.IdentityList{User: pbUser(u)}
		for _, k := range ks {
			out.Devices = append(out.Devices, &pb.DeviceIdentity{DeviceId: k.DeviceID, IdentityKey: k.IdentityKey})
		}
		return out, nil
	}),
	"keys.bundles": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.BundlesRequest) (proto.Message, error) {
		u, bs, err := c.srv.svc.Bundles(ctx, caller, r.Username, r.DeviceIds)
		if err != nil {
			return nil, err
		}
		out := &pb.BundleList{User: pbUser(u)}
		for _, b := range bs {
			pbb := &pb.Bundle{
				UserId: b.UserID, DeviceId: b.DeviceID, RegistrationId: b.RegistrationID, IdentityKey: b.IdentityKey,
				SignedPreKey: &pb.SignedPreKey{Id: b.Signed.ID, PublicKey: b.Signed.PublicKey, Signature: b.Signed.Signature, CreatedAt: unixMS(b.Signed.CreatedAt)},
			}
			if b.PreKey != nil {
				pbb.PreKey = &pb.PreKey{Id: b.PreKey.ID, PublicKey: b.PreKey.PublicKey}
			}
			out.Bundles = append(out.Bundles, pbb)
		}
		return out, nil
	}),
	"secret.send": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.SecretSendRequest) (proto.Message, error) {
		envs, err := c.srv.svc.SendSecret(ctx, caller, secretSend(r))
		if err != nil {
			return nil, err
		}
		out := &pb.SecretSendResult{}
		for _, e := range envs {
			out.Ids = append(out.Ids, e.ID)
			out.SentAt = unixMS(e.SentAt)
		}
		c.srv.metrics.messagesIn.Inc()
		return out, nil
	}),
	"secret.fetch": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.FetchRequest) (proto.Message, error) {
		envs, more, st, err := c.srv.svc.FetchEnvelopes(ctx, caller, int(r.Limit))
		if err != nil {
			return nil, err
		}
		out := &pb.EnvelopeList{More: more, Keys: pbKeyStatus(st)}
		for i := range envs {
			out.Envelopes = append(out.Envelopes, c.srv.render.envelope(ctx, &envs[i]))
		}
		return out, nil
	}),
	"secret.ack": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.AckRequest) (proto.Message, error) {
		return &pb.Empty{}, c.srv.svc.AckEnvelopes(ctx, caller, r.Ids)
	}),
	"secret.group.create": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.SecretGroupCreateRequest) (proto.Message, error) {
		if len(r.Usernames) > herald.MaxSecretGroupMembers {
			return nil, herald.Errorf(herald.TooLarge, "a secret group has at most %d members", herald.MaxSecretGroupMembers)
		}
		g, err := c.srv.svc.CreateSecretGroup(ctx, caller, r.Usernames)
		return pbSecretGroup(g), err
	}),
	"secret.group.get": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.SecretGroupRequest) (proto.Message, error) {
		g, err := c.srv.svc.SecretGroup(ctx, caller, r.GroupId)
		return pbSecretGroup(g), err
	}),
	"secret.group.add": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.SecretGroupChangeRequest) (proto.Message, error) {
		g, err := c.srv.svc.AddSecretGroupMember(ctx, caller, r.GroupId, r.Username)
		return pbSecretGroup(g), err
	}),
	"secret.group.remove": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.SecretGroupChangeRequest) (proto.Message, error) {
		if r.Username == "" {
			return nil, herald.Errorf(herald.Invalid, "give the member to remove")
		}
		g, err := c.srv.svc.RemoveSecretGroupMember(ctx, caller, r.GroupId, r.Username)
		return pbSecretGroup(g), err
	}),
	"secret.group.leave": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.SecretGroupRequest) (proto.Message, error) {
		g, err := c.srv.svc.RemoveSecretGroupMember(ctx, caller, r.GroupId, "")
		return pbSecretGroup(g), err
	}),
	"secret.group.send": handler(true, func(ctx context.Context, c *conn, caller service.Caller, r *pb.SecretGroupSendRequest) (proto.Message, error) {
		envs, err := c.srv.svc.SendSecretGroup(ctx, caller, secretGroupSend(r))
		if err != nil {
			return nil, err
		}
		out := &pb.SecretSendResult{}
		for _, e := range envs {
			out.Ids = append(out.Ids, e.ID)
			out.SentAt = unixMS(e.SentAt)
		}
		c.srv.metrics.messagesIn.Inc()
		return out, nil
	}),
}

// secretGroupSend is a secret.group.send request as the service takes it.
func secretGroupSend(r *pb.SecretGroupSendRequest) service.SecretGroupSend {
	p := service.SecretGroupSend{GroupID: r.GroupId, Body: r.Body, TTL: time.Duration(r.TtlMs) * time.Millisecond, FileIDs: r.FileIds}
	for _, d := range r.Devices {
		p.Devices = append(p.Devices, herald.DeviceSet{UserID: d.UserId, Devices: d.DeviceIds})
	}
	return p
}

func pbSecretGroup(g service.SecretGroupView) *pb.SecretGroupInfo {
	out := &pb.SecretGroupInfo{Id: g.ID}
	for _, m := range g.Members {
		out.Members = append(out.Members, &pb.SecretGroupMember{UserId: m.UserID, Username: g.Names[m.UserID], Admin: m.Admin})
	}
	return out
}

func init() {
	for name, m := range secretMethods {
		if _, dup := methods[name]; dup {
			panic("transport: method " + name + " defined twice")
		}
		methods[name] = m
	}
}

// keyUpload is a keys.publish request as the service takes it.
func keyUpload(r *pb.PublishKeysRequest) service.KeyUpload {
	up := service.KeyUpload{IdentityKey: r.IdentityKey, RegistrationID: r.RegistrationId}
	if sp := r.SignedPreKey; sp != nil {
		up.Signed = herald.SignedPreKey{ID: sp.Id, PublicKey: sp.PublicKey, Signature: sp.Signature, CreatedAt: fromUnixMS(sp.CreatedAt)}
	}
	for _, p := range r.PreKeys {
		up.PreKeys = append(up.PreKeys, herald.PreKey{ID: p.Id, PublicKey: p.PublicKey})
	}
	return up
}

// secretSend is a secret.send request as the service takes it.
func secretSend(r *pb.SecretSendRequest) service.SecretSend {
	p := service.SecretSend{Username: r.Username, TTL: time.Duration(r.TtlMs) * time.Millisecond, FileIDs: r.FileIds}
	for _, e := range r.Envelopes {
		p.Envelopes = append(p.Envelopes, herald.Envelope{DeviceID: e.DeviceId, Type: herald.EnvelopeType(e.Type), Body: e.Body, RegistrationID: e.RegistrationId})
	}
	return p
}

func pbKeyStatus(st herald.KeyStatus) *pb.KeyStatus {
	return &pb.KeyStatus{PreKeys: int32(st.PreKeys), Low: st.Low, SignedAt: unixMS(st.SignedAt), MaxPreKeyId: st.MaxID}
}

func (r renderer) envelope(ctx context.Context, e *herald.Envelope) *pb.Envelope {
	return &pb.Envelope{
		Id: e.ID, SenderId: e.SenderID, SenderDevice: e.SenderDevice, DeviceId: e.DeviceID, UserId: e.UserID,
		Type: int32(e.Type), Body: e.Body, SentAt: unixMS(e.SentAt), ExpiresAt: unixMS(e.ExpiresAt),
		SenderUsername: r.svc.UserNames(ctx, e.SenderID)[e.SenderID], GroupId: e.GroupID,
	}
}

func encodeEnvelope(e *pb.Envelope) []byte {
	b, _ := proto.Marshal(&pb.Frame{Kind: &pb.Frame_Envelope{Envelope: e}})
	return b
}

// pbStale fills in the device lists of a STALE_DEVICES error.
func pbStale(err error, e *pb.Error) {
	var st *herald.StaleDevicesError
	if !errors.As(err, &st) {
		return
	}
	e.Stale = &pb.StaleDevices{Missing: st.Missing, Extra: st.Extra}
	for _, d := range st.Current {
		e.Stale.Current = append(e.Stale.Current, &pb.DeviceSet{UserId: d.UserID, DeviceIds: d.Devices})
	}
}

func fromUnixMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}
