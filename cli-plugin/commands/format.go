package commands

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/template"
)

// Output formats accepted by --format besides a Go template.
const (
	formatTable = "table"
	formatJSON  = "json"
)

const formatFlagUsage = `Format output: "table", "json", or a Go template`

// writeFormatted prints v as JSON, through a Go template, or with table for the default.
func writeFormatted(out io.Writer, format string, v any, table func(io.Writer) error) error {
	switch format {
	case "", formatTable:
		return table(out)
	case formatJSON:
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tmpl, err := template.New("format").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}).Parse(format)
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	var sb strings.Builder
	if err := tmpl.Execute(&sb, v); err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	_, err = fmt.Fprintln(out, sb.String())
	return err
}
