package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/agentapi"
	"github.com/swarmbackup/swarmbackup/shared/notify"
	"github.com/swarmbackup/swarmbackup/volume-plugin/metrics"
)

// The end of every snapshot reaches the metrics; a failed one also reaches the operator's webhook.
func TestSnapshotsEndInTheMetricsAndFailuresInANotification(t *testing.T) {
	var mu sync.Mutex
	var titles []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		data, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(data, &body)
		mu.Lock()
		titles = append(titles, body["title"])
		mu.Unlock()
	}))
	defer hook.Close()
	log := slog.New(slog.DiscardHandler)
	n, err := notify.New([]string{"generic://" + strings.TrimPrefix(hook.URL, "http://") + "/?template=json&disabletls=yes"}, false, log)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New("test")
	a := New(context.Background(), nil, nil, nil, nil, log)
	a.Observe(m, n)

	run := func(volume string, work func(*agentapi.Job, func(done, total uint64)) error) {
		job, err := a.start("snapshot", volume, work)
		if err != nil {
			t.Fatal(err)
		}
		a.Job(context.Background(), job.ID, agentapi.MaxJobWait)
	}
	run("shop_db", func(j *agentapi.Job, _ func(done, total uint64)) error {
		j.Files, j.Bytes, j.BytesNew, j.QuiesceWindow = 12, 4096, 1024, 250*time.Millisecond
		return nil
	})
	run("shop_db", func(j *agentapi.Job, _ func(done, total uint64)) error {
		j.Files, j.Bytes, j.BytesNew = 12, 4096, 512
		return nil
	})
	run("uploads", func(*agentapi.Job, func(done, total uint64)) error {
		return errors.New("the repository is unreachable")
	})

	scrape := httptest.NewServer(m.Handler())
	defer scrape.Close()
	want := []string{
		`swarmbackup_volume_runs_total{volume="shop_db"} 2`,
		`swarmbackup_volume_failures_total{volume="shop_db"} 0`,
		`swarmbackup_volume_last_size_bytes{volume="shop_db"} 4096`,
		`swarmbackup_volume_new_bytes_total{volume="shop_db"} 1536`,
		`swarmbackup_volume_last_files{volume="shop_db"} 12`,
		`swarmbackup_volume_failures_total{volume="uploads"} 1`,
		`swarmbackup_agent_info{version="test"} 1`,
	}
	var page string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(scrape.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page = string(body)
		mu.Lock()
		notified := len(titles)
		mu.Unlock()
		if (containsAll(page, want) && notified == 1) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Errorf("the metrics lack %s", w)
		}
	}
	if !strings.Contains(page, `swarmbackup_volume_last_success_timestamp_seconds{volume="shop_db"} 1.`) {
		t.Error("the metrics lack the last success time of shop_db")
	}
	if strings.Contains(page, `swarmbackup_volume_last_success_timestamp_seconds{volume="uploads"}`) {
		t.Error("a volume that never succeeded has a last success time")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(titles) != 1 || !strings.Contains(titles[0], "snapshot of volume uploads") || !strings.Contains(titles[0], "FAILED") {
		t.Errorf("notifications %q, want one of the failed uploads snapshot", titles)
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
