package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/scopewatch/scopewatch/api"
	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// localUsage is the help of the --local flag of the commands that merge
// the answers of a fleet.
const localUsage = "answer from this instance alone, not from every instance of cluster.peers"

// fleetOn reports whether a command asks the whole fleet: the
// configuration names peers and --local is not given.
func fleetOn(cfg *rules.Config, local bool) bool { return !local && len(cfg.Cluster.Peers) > 0 }

// askPeers asks every peer of cfg for path and returns their answers, in
// the order of cluster.peers. A peer that does not answer is an error: a
// merged answer without it would miss its clients.
func askPeers[T any](ctx context.Context, cfg *rules.Config, path string) ([]T, error) {
	out := make([]T, 0, len(cfg.Cluster.Peers))
	for _, addr := range cfg.Cluster.Peers {
		var v T
		ok, err := api.NewPeer(addr).Get(ctx, path, &v)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", addr, err)
		}
		if !ok {
			return nil, fmt.Errorf("peer %s (cluster.peers of %s) does not answer, and a fleet's answer needs every instance: start it, or give --local for this instance's part", addr, cfg.File)
		}
		out = append(out, v)
	}
	return out, nil
}

// fleetOf returns the merge of this instance and its peers, from the
// clients each one holds, and the names of the instances for messages.
func fleetOf(ctx context.Context, cfg *rules.Config) (*report.Fleet, error) {
	var mine []report.ClientView
	err := readState(ctx, cfg, "/api/v1/clients", &mine, func(db *store.DB) error {
		cs, err := db.Clients()
		if err != nil {
			return err
		}
		mine = report.Views(cs)
		return nil
	})
	if err != nil {
		return nil, err
	}
	theirs, err := askPeers[[]report.ClientView](ctx, cfg, "/api/v1/clients")
	if err != nil {
		return nil, err
	}
	return report.NewFleet(fleetNames(cfg), append([][]report.ClientView{mine}, theirs...))
}

// fleetNames names this instance and its peers, in the order of the
// answers.
func fleetNames(cfg *rules.Config) []string {
	return append([]string{"this instance (" + cfg.Listen + ")"}, cfg.Cluster.Peers...)
}

// fleetClient returns what the fleet holds about client id: the answer of
// the one instance that has seen it.
func fleetClient(ctx context.Context, cfg *rules.Config, id string) (report.ClientView, error) {
	path := "/api/v1/clients/" + url.PathEscape(id)
	one, err := seenClient(ctx, cfg, id)
	found := err == nil
	if err != nil && !errors.Is(err, errUnseen) {
		return one, err
	}
	for _, addr := range cfg.Cluster.Peers {
		var v report.ClientView
		ok, err := api.NewPeer(addr).Get(ctx, path, &v)
		switch {
		case errors.Is(err, api.ErrNoClient):
			continue
		case err != nil:
			return one, fmt.Errorf("peer %s: %w", addr, err)
		case !ok:
			return one, fmt.Errorf("peer %s (cluster.peers of %s) does not answer, and a fleet's answer needs every instance: start it, or give --local for this instance's part", addr, cfg.File)
		case found:
			return one, &report.ConflictError{Client: id, Peers: [2]string{"this instance or an earlier peer", addr}}
		}
		one, found = v, true
	}
	if !found {
		return one, unseen(cfg, id, "no instance of the fleet has seen it")
	}
	return one, nil
}

// fleetUnused merges mine, this instance's unused-scope report at path,
// with those of the peers.
func fleetUnused(ctx context.Context, cfg *rules.Config, path string, mine detect.UnusedReport) (detect.UnusedReport, error) {
	f, err := fleetOf(ctx, cfg)
	if err != nil {
		return mine, err
	}
	theirs, err := askPeers[detect.UnusedReport](ctx, cfg, path)
	if err != nil {
		return mine, err
	}
	return f.Unused(append([]detect.UnusedReport{mine}, theirs...))
}

// fleetScope merges mine, this instance's report on a scope at path,
// with those of the peers.
func fleetScope(ctx context.Context, cfg *rules.Config, path string, mine report.ScopeReport) (report.ScopeReport, error) {
	f, err := fleetOf(ctx, cfg)
	if err != nil {
		return mine, err
	}
	theirs, err := askPeers[report.ScopeReport](ctx, cfg, path)
	if err != nil {
		return mine, err
	}
	return f.Scope(append([]report.ScopeReport{mine}, theirs...))
}

// fleetClients merges mine, this instance's clients, with the peers'.
func fleetClients(ctx context.Context, cfg *rules.Config, mine []report.ClientView) ([]report.ClientView, error) {
	theirs, err := askPeers[[]report.ClientView](ctx, cfg, "/api/v1/clients")
	if err != nil {
		return nil, err
	}
	all := append([][]report.ClientView{mine}, theirs...)
	f, err := report.NewFleet(fleetNames(cfg), all)
	if err != nil {
		return nil, err
	}
	return f.Clients(all), nil
}

// fleetFindings merges mine, this instance's findings at path, with the
// peers'.
func fleetFindings(ctx context.Context, cfg *rules.Config, path string, mine []report.FindingView) ([]report.FindingView, error) {
	f, err := fleetOf(ctx, cfg)
	if err != nil {
		return nil, err
	}
	theirs, err := askPeers[[]report.FindingView](ctx, cfg, path)
	if err != nil {
		return nil, err
	}
	return f.Findings(append([][]report.FindingView{mine}, theirs...)), nil
}
