package quiesce

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmbackup/swarmbackup/shared/volumeopts"
)

func newTestHolder(t *testing.T) *Holder {
	return New(nil, filepath.Join(t.TempDir(), "quiesce.json"), func(string) func() { return func() {} },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestWithoutTheEngineSocketAHoldIsRefusedBeforeCapture(t *testing.T) {
	h := newTestHolder(t)
	captured := false
	_, err := h.Hold(context.Background(), "db", volumeopts.Options{Quiesce: volumeopts.QuiescePause}, func() error {
		captured = true
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "docker-sock") || captured {
		t.Fatalf("Hold = %v, captured %v; want a refusal naming the docker-sock mount, before any capture", err, captured)
	}
	// quiesce=none needs no engine, and holds nothing: the live tree is read, not a capture.
	if _, err := h.Hold(context.Background(), "db", volumeopts.Options{Quiesce: volumeopts.QuiesceNone}, func() error { captured = true; return nil }); err != nil || captured {
		t.Fatalf("Hold with quiesce=none = %v, captured %v; want no error and no capture", err, captured)
	}
}

func TestTheJournalKeepsHoldsUntilReleased(t *testing.T) {
	h := newTestHolder(t)
	if err := h.Heal(context.Background()); err != nil {
		t.Fatalf("healing an empty journal: %v", err)
	}
	if err := h.record("db", &hold{Mode: volumeopts.QuiescePause, Containers: []string{"c1"}}); err != nil {
		t.Fatal(err)
	}
	if err := h.record("cache", &hold{Mode: volumeopts.QuiesceExec, Containers: []string{"c2"}, Post: "true"}); err != nil {
		t.Fatal(err)
	}
	if err := h.record("cache", nil); err != nil {
		t.Fatal(err)
	}
	holds, err := h.read()
	if err != nil || len(holds) != 1 || holds["db"].Containers[0] != "c1" {
		t.Fatalf("journal holds %v (%v), want only db's", holds, err)
	}
	// A held container that cannot be released is reported, never forgotten.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.Heal(ctx); err == nil {
		t.Fatal("Heal without an engine reported nothing")
	}
	if holds, _ := h.read(); len(holds) != 1 {
		t.Fatal("Heal dropped a hold it could not release")
	}
}
