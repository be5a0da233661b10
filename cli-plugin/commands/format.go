package commands

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"text/tabwriter"

	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/cli/templates"
	"github.com/spf13/pflag"
)

// Output formats accepted by --format besides a Go template.
const (
	formatTable = formatter.TableFormatKey
	formatJSON  = formatter.JSONFormatKey
)

const formatFlagUsage = `Format output: "table", "json" (one object per line), a Go template, or "table TEMPLATE"`

// listFormat is how a listing prints: --format, --quiet and --no-trunc, as docker's own listings take them.
type listFormat struct {
	format  string
	quiet   bool
	noTrunc bool
}

func (f *listFormat) addFlags(fs *pflag.FlagSet, quietUsage string) {
	fs.StringVar(&f.format, "format", "", formatFlagUsage)
	fs.BoolVar(&f.noTrunc, "no-trunc", false, "Don't truncate output")
	if quietUsage != "" {
		fs.BoolVarP(&f.quiet, "quiet", "q", false, quietUsage)
	}
}

// row is one line of a listing: templates read its methods, "json" prints its record.
type row interface {
	formatter.SubContext
	json.Marshaler
}

// writeRows renders a listing through docker/cli's formatter, as `docker service ls` does: the
// default table (defaultTable, a "table ..." template), "json", a template, or IDs only. Table
// columns are headed by their field in capitals (".NewBytes" heads "NEW BYTES").
func writeRows[T any](out io.Writer, f listFormat, defaultTable string, items []T, newRow func(item T, trunc bool) row) error {
	format := f.format
	switch {
	case f.quiet:
		format = formatter.DefaultQuietFormat
	case format == "" || format == formatTable:
		format = defaultTable
	}
	header := formatter.SubHeaderContext{}
	for _, m := range templateField.FindAllStringSubmatch(format, -1) {
		header[m[1]] = heading(m[1])
	}
	fctx := formatter.Context{Output: out, Format: formatter.Format(format), Trunc: !f.noTrunc}
	err := fctx.Write(&formatter.HeaderContext{Header: header}, func(write func(formatter.SubContext) error) error {
		for _, it := range items {
			if err := write(newRow(it, fctx.Trunc)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	return nil
}

var wordStart = regexp.MustCompile(`([a-z0-9])([A-Z])`)

func heading(field string) string {
	return strings.ToUpper(wordStart.ReplaceAllString(field, "$1 $2"))
}

// writeFormatted prints one object (or each of a list) for commands that show a report rather
// than a listing: the default table, "json" as one object per line, or a Go template with
// docker's template functions, "table TEMPLATE" adding a header.
func writeFormatted(out io.Writer, format string, v any, table func(io.Writer) error) error {
	switch format {
	case "", formatTable:
		return table(out)
	case formatJSON:
		format = formatter.JSONFormat
	}
	text, withHeader := strings.CutPrefix(format, formatTable+" ")
	tmpl, err := templates.Parse(text)
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	w := out
	var tw *tabwriter.Writer
	if withHeader {
		tw = tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
		w = tw
		fmt.Fprintln(tw, templateHeader(text))
	}
	err = eachItem(v, func(item any) error {
		var sb strings.Builder
		if err := tmpl.Execute(&sb, item); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		_, err := fmt.Fprintln(w, sb.String())
		return err
	})
	if err == nil && tw != nil {
		err = tw.Flush()
	}
	return err
}

// eachItem calls fn with every element of a list, or with v itself when it is no list.
func eachItem(v any, fn func(any) error) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		return fn(v)
	}
	for i := range rv.Len() {
		if err := fn(rv.Index(i).Interface()); err != nil {
			return err
		}
	}
	return nil
}

var templateField = regexp.MustCompile(`{{[^}]*?\.([A-Za-z_][A-Za-z0-9_]*)[^}]*}}`)

// templateHeader names the columns of a table template after the fields it prints:
// "{{.ID}}\t{{.Time}}" heads "ID\tTIME".
func templateHeader(text string) string {
	return templateField.ReplaceAllStringFunc(text, func(m string) string {
		return heading(templateField.FindStringSubmatch(m)[1])
	})
}
