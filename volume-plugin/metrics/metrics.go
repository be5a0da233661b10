// Package metrics exposes the agent's work to Prometheus: per volume and per job kind, when
// it last succeeded, how long it took, what it stored, how often it failed; and the agent's
// own reports. Opt-in: the plugin serves it only when SWARMBACKUP_METRICS_ADDR is set.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swarmbackup/swarmbackup/shared/notify"
)

// Setting names the listen address of the endpoint, e.g. ":9464"; empty: no endpoint.
const Setting = "SWARMBACKUP_METRICS_ADDR"

const namespace = "swarmbackup"

// Metrics holds the agent's metrics; its methods are safe for concurrent use, and a nil
// *Metrics takes every observation and keeps none.
type Metrics struct {
	reg  *prometheus.Registry
	jobs map[string]*jobMetrics // by notify.Job*

	quiesceWindow    *prometheus.GaugeVec
	heartbeat        prometheus.Gauge
	heartbeatFailure prometheus.Counter
}

// jobMetrics are the metrics of one kind of job; snapshots are labelled by volume.
type jobMetrics struct {
	lastSuccess, lastDuration, lastBytes, lastNewBytes, lastFiles *prometheus.GaugeVec
	runs, failures, newBytes                                      *prometheus.CounterVec
}

// New registers the metrics of an agent of the given version.
func New(version string) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := factory{reg}
	m := &Metrics{reg: reg, jobs: map[string]*jobMetrics{}}
	m.jobs[notify.JobSnapshot] = f.job("volume", "a volume's snapshots", "volume")
	m.jobs[notify.JobSet] = f.job("set", "the backup sets this agent took for the cluster's schedule")
	m.jobs[notify.JobDrill] = f.job("drill", "the drills this agent ran for the cluster's schedule")
	m.jobs[notify.JobPrune] = f.job("prune", "the retention runs of this agent")
	m.quiesceWindow = f.gauge("volume_quiesce_window_seconds", "How long the last snapshot held the volume's containers.", "volume")
	m.heartbeat = f.gauge("agent_last_report_timestamp_seconds", "When the agent last reported to the repository (status reads the reports).").WithLabelValues()
	m.heartbeatFailure = f.counter("agent_report_failures_total", "Reports of the agent that the repository did not take.").WithLabelValues()
	f.gauge("agent_info", "The agent's version.", "version").WithLabelValues(version).Set(1)
	return m
}

type factory struct{ reg *prometheus.Registry }

func (f factory) gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) counter(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

// job registers swarmbackup_<prefix>_... for one kind of job.
func (f factory) job(prefix, of string, labels ...string) *jobMetrics {
	return &jobMetrics{
		lastSuccess:  f.gauge(prefix+"_last_success_timestamp_seconds", "When the last successful run of "+of+" ended.", labels...),
		lastDuration: f.gauge(prefix+"_last_duration_seconds", "How long the last run of "+of+" took, failed or not.", labels...),
		lastBytes:    f.gauge(prefix+"_last_size_bytes", "Bytes of data the last successful run of "+of+" covered.", labels...),
		lastNewBytes: f.gauge(prefix+"_last_new_bytes", "Bytes the last successful run of "+of+" added to the repository (before compression).", labels...),
		lastFiles:    f.gauge(prefix+"_last_files", "Files the last successful run of "+of+" covered.", labels...),
		runs:         f.counter(prefix+"_runs_total", "Runs of "+of+".", labels...),
		failures:     f.counter(prefix+"_failures_total", "Failed runs of "+of+".", labels...),
		newBytes:     f.counter(prefix+"_new_bytes_total", "Bytes "+of+" added to the repository (before compression).", labels...),
	}
}

// Observe records the end of a job.
func (m *Metrics) Observe(e notify.Event) {
	if m == nil {
		return
	}
	j, ok := m.jobs[e.Job]
	if !ok {
		return
	}
	var labels []string
	if e.Job == notify.JobSnapshot {
		labels = []string{e.Subject}
	}
	j.runs.WithLabelValues(labels...).Inc()
	j.failures.WithLabelValues(labels...).Add(0) // present from the first run, so rates and alerts see a 0
	j.lastDuration.WithLabelValues(labels...).Set(e.Took.Seconds())
	if e.Err != nil {
		j.failures.WithLabelValues(labels...).Inc()
		return
	}
	j.lastSuccess.WithLabelValues(labels...).Set(float64(e.Ended.UnixNano()) / 1e9)
	j.lastBytes.WithLabelValues(labels...).Set(float64(e.Bytes))
	j.lastNewBytes.WithLabelValues(labels...).Set(float64(e.BytesNew))
	j.lastFiles.WithLabelValues(labels...).Set(float64(e.Files))
	j.newBytes.WithLabelValues(labels...).Add(float64(e.BytesNew))
	if e.Job == notify.JobSnapshot {
		m.quiesceWindow.WithLabelValues(labels...).Set(e.QuiesceWindow.Seconds())
	}
}

// Reported records one of the agent's reports to the repository.
func (m *Metrics) Reported(at time.Time, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.heartbeatFailure.Inc()
		return
	}
	m.heartbeat.Set(float64(at.UnixNano()) / 1e9)
}

// Forget drops a removed volume's series.
func (m *Metrics) Forget(volume string) {
	if m == nil {
		return
	}
	j := m.jobs[notify.JobSnapshot]
	for _, g := range []*prometheus.GaugeVec{j.lastSuccess, j.lastDuration, j.lastBytes, j.lastNewBytes, j.lastFiles, m.quiesceWindow} {
		g.DeleteLabelValues(volume)
	}
	for _, c := range []*prometheus.CounterVec{j.runs, j.failures, j.newBytes} {
		c.DeleteLabelValues(volume)
	}
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Serve serves /metrics on addr until ctx ends.
func (m *Metrics) Serve(ctx context.Context, addr string, log *slog.Logger) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info("serving metrics", "addr", l.Addr().String(), "path", "/metrics")
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		return fmt.Errorf("metrics: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	<-served
	return nil
}
