package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// startingEngine serves the engine API on a unix socket, as an engine just restarted: its
// swarm says "pending", with no node ID, for the first answers, then "active".
func startingEngine(t *testing.T, pending int32) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		if !strings.HasSuffix(r.URL.Path, "/info") {
			return // _ping
		}
		info := map[string]any{"ID": "ENGINE1", "Name": "node2", "Swarm": map[string]any{"LocalNodeState": "pending"}}
		if asked.Add(1) > pending {
			info["Swarm"] = map[string]any{"LocalNodeState": "active", "NodeID": "node2id", "Cluster": map[string]any{"ID": "c1"}}
		}
		_ = json.NewEncoder(w).Encode(info)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return sock
}

// A job right after an engine restart waits for the engine's swarm: a node-scoped volume's
// snapshot goes into the node's chain, not into one named after the engine.
func TestAJobWaitsForARestartingEngineToSayWhichNodeItIs(t *testing.T) {
	a := New(context.Background(), nil, nil, NewEngine(startingEngine(t, 2)), nil, slog.New(slog.DiscardHandler))
	if got := a.nodeIdentity(); got != "node2id" {
		t.Fatalf("the node is %q, want the swarm node ID the engine gives once its swarm runs", got)
	}
}

// An engine in no swarm is named by its own ID, at once.
func TestAnEngineInNoSwarmIsNamedByItsID(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		_ = json.NewEncoder(w).Encode(map[string]any{"ID": "ENGINE1", "Name": "solo", "Swarm": map[string]any{"LocalNodeState": "inactive"}})
	})}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	a := New(context.Background(), nil, nil, NewEngine(sock), nil, slog.New(slog.DiscardHandler))
	if got := a.nodeIdentity(); got != "engine ENGINE1" {
		t.Fatalf("the node is %q, want the engine's ID", got)
	}
}
