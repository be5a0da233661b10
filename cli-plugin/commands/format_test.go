package commands

import (
	"io"
	"strings"
	"testing"
)

func TestFormatsPrintListsOneObjectPerLineAsDockerDoes(t *testing.T) {
	type row struct {
		ID   string `json:"id"`
		Size int    `json:"size"`
	}
	rows := []row{{"a1", 10}, {"b2", 20}}
	table := func(w io.Writer) error { _, err := io.WriteString(w, "the table\n"); return err }
	for _, tc := range []struct {
		format string
		v      any
		want   string
	}{
		{"", rows, "the table\n"},
		{"json", rows, "{\"id\":\"a1\",\"size\":10}\n{\"id\":\"b2\",\"size\":20}\n"},
		{"json", row{"c3", 30}, "{\"id\":\"c3\",\"size\":30}\n"},
		{"{{.ID}}", rows, "a1\nb2\n"},
		{"{{json .}}", rows[:1], "{\"id\":\"a1\",\"size\":10}\n"},
		{"table {{.ID}}\t{{.Size}}", rows, "ID   SIZE\na1   10\nb2   20\n"},
	} {
		var sb strings.Builder
		if err := writeFormatted(&sb, tc.format, tc.v, table); err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		if sb.String() != tc.want {
			t.Errorf("--format %q printed %q, want %q", tc.format, sb.String(), tc.want)
		}
	}
	if err := writeFormatted(io.Discard, "{{.Nope", rows, table); err == nil || !strings.HasPrefix(err.Error(), "--format") {
		t.Errorf("a broken template: %v", err)
	}
}
