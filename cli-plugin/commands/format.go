package commands

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"text/tabwriter"
	"text/template"
)

// Output formats accepted by --format besides a Go template.
const (
	formatTable = "table"
	formatJSON  = "json"
)

const formatFlagUsage = `Format output: "table", "json" (one object per line), a Go template, or "table TEMPLATE"`

// writeFormatted prints v with table for the default, or as docker prints objects: a list
// one item per line (JSON, or through the Go template), "table TEMPLATE" with a header.
func writeFormatted(out io.Writer, format string, v any, table func(io.Writer) error) error {
	switch format {
	case "", formatTable:
		return table(out)
	case formatJSON:
		return eachItem(v, func(item any) error {
			b, err := json.Marshal(item)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(out, string(b))
			return err
		})
	}
	text, withHeader := strings.CutPrefix(format, "table ")
	tmpl, err := template.New("format").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}).Parse(text)
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
		return strings.ToUpper(templateField.FindStringSubmatch(m)[1])
	})
}
