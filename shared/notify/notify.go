// Package notify tells an operator when a job ends: a snapshot, a set, a drill or a prune
// that failed (and, when asked, one that succeeded), through shoutrrr's services (Slack,
// e-mail, Teams, Telegram, generic webhooks and more), each named by a URL.
package notify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/nicholas-fedor/shoutrrr"
	"github.com/nicholas-fedor/shoutrrr/pkg/router"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"
)

// Jobs an event can be of.
const (
	JobSnapshot = "snapshot"
	JobSet      = "set"
	JobDrill    = "drill"
	JobPrune    = "prune"
)

// Event is the end of a job.
type Event struct {
	Job     string // JobSnapshot, JobSet, JobDrill or JobPrune
	Subject string // the volume, or the set's ID
	Host    string // the node that ran it
	Err     error  // nil when it succeeded
	Ended   time.Time
	Took    time.Duration
	// What it stored or checked, when it succeeded.
	Files, Bytes, BytesNew uint64
	// QuiesceWindow is how long a snapshot held the volume's containers.
	QuiesceWindow time.Duration
}

// Title is one line: what ran where, and how it ended.
func (e Event) Title() string {
	what := e.Job
	switch e.Job {
	case JobSnapshot:
		what = "snapshot of volume " + e.Subject
	case JobSet, JobDrill:
		if e.Subject != "" { // a set that failed before it was made has no ID
			what += " " + shortID(e.Subject)
		}
	}
	outcome := "succeeded"
	if e.Err != nil {
		outcome = "FAILED"
	}
	return fmt.Sprintf("swarmbackup: %s on %s %s", what, e.Host, outcome)
}

// Message says when, how long, and what failed or what was stored.
func (e Event) Message() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s at %s, after %s", e.Title(), e.Ended.UTC().Format(time.RFC3339), e.Took.Round(time.Millisecond))
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	} else if e.Files > 0 || e.Bytes > 0 {
		fmt.Fprintf(&b, ": %d files, %s, %s new", e.Files, units.BytesSize(float64(e.Bytes)), units.BytesSize(float64(e.BytesNew)))
	}
	return b.String()
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Notifier sends events to the operator's services.
type Notifier struct {
	sender   *router.ServiceRouter
	services []string // the URLs' schemes, for logs: the URLs themselves may hold tokens
	always   bool
	log      *slog.Logger
}

// New checks the URLs and returns a notifier that sends failures, and successes too when
// always is set. Errors name a URL by its position and service, never by its text, which
// may hold a token.
func New(urls []string, always bool, log *slog.Logger) (*Notifier, error) {
	n := &Notifier{always: always, log: log}
	for i, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme == "" {
			return nil, fmt.Errorf("notification URL %d is no URL (want SERVICE://..., e.g. generic://host/path)", i+1)
		}
		n.services = append(n.services, u.Scheme)
	}
	sender, err := shoutrrr.CreateSender(urls...)
	if err != nil {
		return nil, fmt.Errorf("notification URLs (%s): %s", strings.Join(n.services, ", "), redact(err, urls))
	}
	n.sender = sender
	return n, nil
}

// Notify sends the event when it is one to send, and waits until every service answered or
// timed out (10 s each, in parallel). A failed notification is logged, never the job's failure.
func (n *Notifier) Notify(ctx context.Context, e Event) {
	if n == nil || (e.Err == nil && !n.always) || ctx.Err() != nil {
		return
	}
	params := types.Params{"title": e.Title()}
	// Answers come in the order the services answer, not the order of the URLs.
	for _, err := range n.sender.Send(e.Message(), &params) {
		if err != nil {
			n.log.Warn("notification not sent", "services", strings.Join(n.services, ","), "job", e.Job, "err", redact(err, nil))
		}
	}
}

// redact keeps URLs out of an error's text: the library names the URL it failed on.
func redact(err error, urls []string) string {
	msg := err.Error()
	for _, u := range urls {
		msg = strings.ReplaceAll(msg, u, "<url>")
	}
	return urlText.ReplaceAllString(msg, "<url>")
}

var urlText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"']+`)

// Settings read from the plugin's settings and its secrets directory.
const (
	// SettingURL names notification URLs, separated by spaces or commas: for URLs without
	// tokens. URLs with tokens go in the file FileURL of the secrets directory, one a line.
	SettingURL = "SWARMBACKUP_NOTIFY_URL"
	// SettingOn is "failure" (the default) or "always".
	SettingOn = "SWARMBACKUP_NOTIFY_ON"
	FileURL   = "notify_url"
)

// FromSettings returns the notifier the settings ask for, nil when they name no URL.
func FromSettings(getenv func(string) string, secretsDir string, log *slog.Logger) (*Notifier, error) {
	urls := strings.FieldsFunc(getenv(SettingURL), func(r rune) bool { return r == ',' || r == ' ' })
	data, err := os.ReadFile(filepath.Join(secretsDir, FileURL))
	switch {
	case err == nil:
		for _, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				urls = append(urls, line)
			}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read %s: %w", FileURL, err)
	}
	var always bool
	switch on := getenv(SettingOn); on {
	case "", "failure":
	case "always":
		always = true
	default:
		return nil, fmt.Errorf("%s=%q: want failure or always", SettingOn, on)
	}
	if len(urls) == 0 {
		return nil, nil
	}
	return New(urls, always, log)
}
