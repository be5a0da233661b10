package agent

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/moby/moby/client"
)

// Engine tells the agent which node it runs on, through the engine's socket (the
// `docker-sock` mount). Without an answer it falls back to the host name.
type Engine struct {
	api *client.Client

	mu                              sync.Mutex
	name, nodeID, engineID, cluster string
	swarmState                      string // the engine's LocalNodeState when it last answered
	lastAsk                         time.Time
}

// NewEngine returns an engine client for the socket at path; it connects lazily.
func NewEngine(socket string) *Engine {
	api, err := client.New(client.WithHost("unix://"+socket), client.WithAPIVersionNegotiation())
	if err != nil {
		return &Engine{}
	}
	return &Engine{api: api}
}

// Node returns the engine's host name and swarm node ID.
func (e *Engine) Node(ctx context.Context) (name, nodeID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.name != "" && e.nodeID != "" {
		return e.name, e.nodeID
	}
	if e.api != nil && time.Since(e.lastAsk) > 10*time.Second {
		e.lastAsk = time.Now()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if info, err := e.api.Info(ctx, client.InfoOptions{}); err == nil {
			e.name, e.nodeID, e.engineID = info.Info.Name, info.Info.Swarm.NodeID, info.Info.ID
			e.swarmState = string(info.Info.Swarm.LocalNodeState)
			if info.Info.Swarm.Cluster != nil {
				e.cluster = info.Info.Swarm.Cluster.ID
			}
		}
	}
	if e.name == "" {
		host, _ := os.Hostname()
		return host, e.nodeID
	}
	return e.name, e.nodeID
}

// settled reports whether the engine answered and is not between states of its swarm (it
// says "pending" while its swarm starts, and knows no node ID yet). Until then, the next call
// to Node asks again at once.
func (e *Engine) settled() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	ok := e.engineID != "" && e.swarmState != "pending"
	if !ok {
		e.lastAsk = time.Time{}
	}
	return ok
}

// API returns the engine client, nil when the socket path was unusable.
func (e *Engine) API() *client.Client { return e.api }

// Identity returns the engine's own ID and its swarm's cluster ID, once the engine answered.
func (e *Engine) Identity(ctx context.Context) (engineID, cluster string) {
	e.Node(ctx)
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.engineID, e.cluster
}
