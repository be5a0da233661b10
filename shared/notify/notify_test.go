package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver is a local webhook endpoint that keeps what it was sent.
type receiver struct {
	mu     sync.Mutex
	bodies []map[string]string
	status int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body map[string]string
	data, _ := io.ReadAll(req.Body)
	_ = json.Unmarshal(data, &body)
	r.mu.Lock()
	r.bodies = append(r.bodies, body)
	status := r.status
	r.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
	}
}

func (r *receiver) received() []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]string(nil), r.bodies...)
}

func webhook(t *testing.T, r *receiver) string {
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return "generic://" + strings.TrimPrefix(srv.URL, "http://") + "/hook?template=json&disabletls=yes"
}

var ended = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)

func TestAFailedJobReachesTheWebhookAndASuccessOnlyWhenAsked(t *testing.T) {
	r := &receiver{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := New([]string{webhook(t, r)}, false, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n.Notify(ctx, Event{Job: JobSnapshot, Subject: "shop_db", Host: "node2", Ended: ended, Took: 3 * time.Second,
		Err: errors.New("upload pack: connection refused")})
	n.Notify(ctx, Event{Job: JobSet, Subject: "5f0c2d9e8b7a6f5e4d3c", Host: "node1", Ended: ended, Took: time.Minute, Files: 10, Bytes: 1 << 20})

	got := r.received()
	if len(got) != 1 {
		t.Fatalf("the webhook received %d messages, want the failure only: %v", len(got), got)
	}
	if want := "swarmbackup: snapshot of volume shop_db on node2 FAILED"; got[0]["title"] != want {
		t.Errorf("title %q, want %q", got[0]["title"], want)
	}
	if msg := got[0]["message"]; !strings.Contains(msg, "connection refused") || !strings.Contains(msg, "2026-11-30T03:00:00Z") {
		t.Errorf("message %q does not say what failed and when", msg)
	}

	n.always = true
	n.Notify(ctx, Event{Job: JobSet, Subject: "5f0c2d9e8b7a6f5e4d3c", Host: "node1", Ended: ended, Took: time.Minute, Files: 10, Bytes: 1 << 20})
	got = r.received()
	if len(got) != 2 || got[1]["title"] != "swarmbackup: set 5f0c2d9e8b7a on node1 succeeded" {
		t.Fatalf("with always, a success is sent too: %v", got)
	}
}

func TestATokenInTheURLStaysOutOfLogsAndErrors(t *testing.T) {
	r := &receiver{status: http.StatusInternalServerError}
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	url := webhook(t, r) + "&@Authorization=Bearer%20s3kr1t-token"
	n, err := New([]string{url}, false, log)
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(context.Background(), Event{Job: JobDrill, Subject: "set1", Host: "node1", Ended: ended, Err: errors.New("volume db: checksum mismatch")})
	if len(r.received()) != 1 {
		t.Fatal("the webhook was not called")
	}
	if !strings.Contains(logged.String(), "notification not sent") || strings.Contains(logged.String(), "s3kr1t") {
		t.Errorf("log: %s", logged.String())
	}
	_, err = New([]string{"slack://s3kr1t-token@nowhere?bad=%zz"}, false, log)
	if err == nil || strings.Contains(err.Error(), "s3kr1t") {
		t.Errorf("a bad URL: %v", err)
	}
}

func TestSettingsNameURLsInTheSecretsDirectoryOrInASetting(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if n, err := FromSettings(getenv, dir, log); n != nil || err != nil {
		t.Fatalf("no URL: %v %v, want no notifier", n, err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileURL), []byte("# the team's hook\ngeneric://127.0.0.1:1/a?disabletls=yes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env[SettingURL] = "generic://127.0.0.1:2/b?disabletls=yes"
	env[SettingOn] = "always"
	n, err := FromSettings(getenv, dir, log)
	if err != nil || n == nil || len(n.services) != 2 || !n.always {
		t.Fatalf("%+v %v, want two services, always", n, err)
	}
	env[SettingOn] = "sometimes"
	if _, err := FromSettings(getenv, dir, log); err == nil || !strings.Contains(err.Error(), SettingOn) {
		t.Errorf("a bad %s: %v", SettingOn, err)
	}
}
