package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/docker/go-units"
)

//go:embed report.html.tmpl
var pageTemplate string

var page = template.Must(template.New("report").Parse(pageTemplate))

// Colours of the picture; the rendering test looks for them.
const (
	ColorOK      = "#2ca02c"
	ColorFailed  = "#d62728"
	ColorGap     = "#f0a30a"
	ColorHorizon = "#cfe0f5"
)

// Geometry of the timeline, in CSS pixels.
const (
	labelWidth = 280
	plotWidth  = 680
	rowHeight  = 40
	axisHeight = 28
)

// view is what the template draws: every position computed here.
type view struct {
	E                                  *Estate
	Width, Height, PlotLeft, PlotWidth int
	Colors                             map[string]string
	Ticks                              []tick
	Rows                               []rowView
	LastDrill                          string
	LastDrillFailed                    bool
}

type tick struct {
	X      float64
	Label  string
	Anchor string // where the label hangs from its line: start, middle or end
}

type rowView struct {
	Row
	Y                    int // the row's middle
	HorizonX, HorizonW   float64
	Marks                []markView
	Gaps                 []gapView
	Last, Horizon, Dedup string
	LastSize, New, Took  string
}

type markView struct {
	X, BarX, BarY, BarH float64
	Failed              bool
	Label               string
}

type gapView struct {
	X, Y, W float64
	Label   string
}

// WriteHTML writes the estate as one self-contained page: inline CSS and SVG, no script, no
// fetch, so it opens anywhere, mailed or archived.
func WriteHTML(w io.Writer, e *Estate) error {
	v := view{E: e, PlotLeft: labelWidth, PlotWidth: plotWidth, Width: labelWidth + plotWidth + 20,
		Colors: map[string]string{"OK": ColorOK, "Failed": ColorFailed, "Gap": ColorGap, "Horizon": ColorHorizon}}
	v.Height = axisHeight + rowHeight*len(e.Rows) + 10
	span := e.To.Sub(e.From)
	x := func(t time.Time) float64 {
		if span <= 0 {
			return labelWidth
		}
		return labelWidth + float64(t.Sub(e.From))/float64(span)*plotWidth
	}
	for i := 0; i <= 5; i++ {
		t := e.From.Add(span * time.Duration(i) / 5)
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case 5:
			anchor = "end"
		}
		v.Ticks = append(v.Ticks, tick{X: x(t), Label: t.UTC().Format("Jan 2 15:04"), Anchor: anchor})
	}
	var maxNew uint64
	for _, r := range e.Rows {
		for _, m := range r.Marks {
			maxNew = max(maxNew, m.NewBytes)
		}
	}
	for i, r := range e.Rows {
		rv := rowView{Row: r, Y: axisHeight + rowHeight*i + rowHeight/2,
			Last: when(r.Last), Horizon: when(r.Horizon), LastSize: size(r.LastBytes), New: size(r.NewBytes),
			Took: "-", Dedup: "-"}
		if r.LastTook > 0 {
			rv.Took = r.LastTook.Round(time.Millisecond).String()
		}
		if d := r.Dedup(); d > 0 {
			rv.Dedup = fmt.Sprintf("%.1fx", d)
		}
		if !r.Horizon.IsZero() {
			rv.HorizonX, rv.HorizonW = x(r.Horizon), x(r.Last)-x(r.Horizon)
		}
		for _, m := range r.Marks {
			mv := markView{X: x(m.Time), Failed: m.Failed, Label: m.Label}
			if maxNew > 0 && !m.Failed {
				// A bar above the mark: what the backup added, against the largest addition.
				mv.BarH = 2 + 12*float64(m.NewBytes)/float64(maxNew)
				mv.BarX, mv.BarY = mv.X-1.5, float64(rv.Y)-6-mv.BarH
			}
			rv.Marks = append(rv.Marks, mv)
		}
		for _, g := range r.Gaps {
			rv.Gaps = append(rv.Gaps, gapView{X: x(g.From), Y: float64(rv.Y) + 9, W: x(g.To) - x(g.From),
				Label: fmt.Sprintf("no backup from %s to %s", g.From.UTC().Format(time.RFC3339), g.To.UTC().Format(time.RFC3339))})
		}
		if n := len(r.Marks); r.Kind == KindDrill && n > 0 {
			last := r.Marks[n-1]
			v.LastDrill, v.LastDrillFailed = when(last.Time), last.Failed
		}
		v.Rows = append(v.Rows, rv)
	}
	if err := page.Execute(w, v); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	return nil
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func size(b uint64) string { return units.BytesSize(float64(b)) }
