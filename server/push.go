package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/heraldim/herald/crypto"
	"github.com/heraldim/herald/egress"
	"github.com/heraldim/herald/push"
	"github.com/heraldim/herald/service"
	"github.com/heraldim/herald/store"
	"github.com/prometheus/client_golang/prometheus"
)

// vapidSealID binds the sealed VAPID private key to its purpose: no
// message id is negative.
const vapidSealID = -15

// openPush loads (or, on the first start of the first node, creates and
// stores) the VAPID key, and turns pushes on. The private key is kept in
// the database sealed under the master key, so every node signs alike.
func openPush(ctx context.Context, db store.Store, sealer *crypto.Sealer, svc *service.Service, cfg Config, reg prometheus.Registerer) (*push.Dispatcher, error) {
	ps, ok := db.(store.Push)
	if !ok {
		return nil, nil
	}
	fresh, err := push.NewKeys()
	if err != nil {
		return nil, err
	}
	priv, pub, err := ps.VAPIDKey(ctx, sealer.Seal(vapidSealID, []byte(fresh.Private)), []byte(fresh.Public))
	if err != nil {
		return nil, fmt.Errorf("VAPID key: %w", err)
	}
	plain, err := sealer.Open(vapidSealID, priv)
	if err != nil {
		return nil, fmt.Errorf("VAPID key: %w (is this the master key the database was made with?)", err)
	}
	keys := push.Keys{Private: string(plain), Public: string(pub)}
	policy := egress.Policy{AllowPrivate: cfg.PushAllowPrivate}
	subscriber := cfg.PushSubscriber
	if subscriber == "" {
		subscriber = "mailto:postmaster@localhost"
	}
	log := cfg.Log
	d := push.New(push.Config{
		Keys: keys, Subscriber: subscriber, Client: policy.Client(30 * time.Second), Registry: reg, Log: log,
		Gone: func(ctx context.Context, endpoint string) {
			if err := ps.DropPushEndpoint(context.WithoutCancel(ctx), endpoint); err != nil {
				log.Warn("push: deleting a gone subscription", "err", err)
			} else {
				log.Info("push: a push service said a subscription is gone; deleted it")
			}
		},
	})
	svc.EnablePush(service.PushConfig{
		Store: ps, Pusher: d, Public: keys.Public,
		CheckEndpoint: policy.CheckURL,
		AllowHTTP:     cfg.PushAllowPrivate,
	})
	log.Debug("push notifications on", slog.String("vapid_public_key", keys.Public))
	return d, nil
}
