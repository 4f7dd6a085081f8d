// Package discovery finds running service replicas through NATS micro's
// $SRV.PING: every replica of every service answers, so counting answers
// within a short window counts replicas without any registry of our own.
package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Instance is one replica that answered.
type Instance struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Replica string `json:"replica,omitempty"`
}

// Service is the status of one service.
type Service struct {
	Name      string     `json:"name"`
	Status    string     `json:"status"` // "up" or "down"
	Replicas  int        `json:"replicas"`
	Instances []Instance `json:"instances"`
}

// Report is the status of every expected service.
type Report struct {
	Status   string    `json:"status"` // "ok" when every service has a replica, else "degraded"
	Services []Service `json:"services"`
}

// Ping asks every micro service once and gathers answers for window, then
// reports each of names (in order) with its replicas.
func Ping(ctx context.Context, nc *nats.Conn, names []string, window time.Duration) (Report, error) {
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return Report{}, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	subject, _ := micro.ControlSubject(micro.PingVerb, "", "")
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return Report{}, err
	}
	byName := map[string][]Instance{}
	deadline := time.Now().Add(window)
	for {
		wait := time.Until(deadline)
		if wait <= 0 || ctx.Err() != nil {
			break
		}
		msg, err := sub.NextMsg(wait)
		if errors.Is(err, nats.ErrTimeout) {
			break
		}
		if err != nil {
			return Report{}, err
		}
		var p micro.Ping
		if json.Unmarshal(msg.Data, &p) != nil || p.Name == "" {
			continue
		}
		byName[p.Name] = append(byName[p.Name], Instance{ID: p.ID, Version: p.Version, Replica: p.Metadata["replica"]})
	}
	rep := Report{Status: "ok"}
	for _, n := range names {
		s := Service{Name: n, Status: "up", Replicas: len(byName[n]), Instances: byName[n]}
		if s.Instances == nil {
			s.Instances = []Instance{}
		}
		if s.Replicas == 0 {
			s.Status, rep.Status = "down", "degraded"
		}
		rep.Services = append(rep.Services, s)
	}
	return rep, nil
}
