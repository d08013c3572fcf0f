package console

import (
	"fmt"
	"html/template"
	"math"
	"sort"
	"strings"
	"time"
)

// Result classes of the charts: a message was relayed, deferred (4xx: the
// client retries) or refused (5xx). Each class has a fill and a pattern
// of its own, so the chart reads without colour too; the table beside it
// has the numbers.
type class struct {
	Name, Fill string
}

var classes = []class{
	{"relayed", "#2f6f3e"},
	{"deferred", "#b7791f"},
	{"refused", "#b3261e"},
}

// classOf sorts a messages_total result into a class.
func classOf(result string) string {
	switch result {
	case "relayed":
		return "relayed"
	case "tempfail", "rate_new_tokens":
		return "deferred"
	}
	return "refused"
}

// routes are the routes the overview charts.
var routes = []string{"inbound", "outbound"}

// chart is one route's flow over a window.
type chart struct {
	Route  string
	Window string
	SVG    template.HTML
	Totals []classTotal
}

type classTotal struct {
	Name  string
	Fill  string
	Count int64
}

// flowChart draws a stacked bar per bucket for route, server-side: plain
// SVG with presentation attributes (no inline style: the CSP forbids it),
// a title per bar for the numbers, and role="img" with a label.
func flowChart(route, window string, bs []bucket, width time.Duration) chart {
	const w, h, pad = 720.0, 140.0, 24.0
	per := make([]map[string]float64, len(bs))
	peak := 1.0
	totals := map[string]float64{}
	for i, b := range bs {
		per[i] = map[string]float64{}
		sum := 0.0
		for k, v := range b.d {
			r, res, ok := strings.Cut(k, "/")
			if !ok || r != route {
				continue
			}
			per[i][classOf(res)] += v
			totals[classOf(res)] += v
			sum += v
		}
		peak = math.Max(peak, sum)
	}
	bw := (w - pad) / float64(len(bs))
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s messages per %s over the last %s, by result">`,
		w, h+18, route, width, window)
	fmt.Fprintf(&s, `<defs><pattern id="hatch-%s" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="2" height="6" fill="#ffffff" fill-opacity="0.55"/></pattern></defs>`, route)
	fmt.Fprintf(&s, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#555" stroke-width="1"/>`, pad, h, w, h)
	fmt.Fprintf(&s, `<text x="0" y="12" font-size="11" fill="#333">%.0f</text><text x="0" y="%.0f" font-size="11" fill="#333">0</text>`, peak, h)
	for i, b := range bs {
		y := h
		x := pad + float64(i)*bw
		var tip []string
		for _, cl := range classes {
			v := per[i][cl.Name]
			if v > 0 {
				tip = append(tip, fmt.Sprintf("%s %.0f", cl.Name, v))
			}
		}
		fmt.Fprintf(&s, `<g><title>%s: %s</title>`, b.end.UTC().Format("15:04"), orNone(tip))
		for _, cl := range classes {
			v := per[i][cl.Name]
			if v == 0 {
				continue
			}
			bh := v / peak * (h - 16)
			y -= bh
			fmt.Fprintf(&s, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x+0.5, y, math.Max(bw-1, 1), bh, cl.Fill)
			if cl.Name != "relayed" { // the non-relayed classes are hatched: no colour needed
				fmt.Fprintf(&s, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="url(#hatch-%s)"/>`, x+0.5, y, math.Max(bw-1, 1), bh, route)
			}
		}
		s.WriteString(`</g>`)
	}
	fmt.Fprintf(&s, `<text x="%.0f" y="%.0f" font-size="11" fill="#333">−%s</text><text x="%.0f" y="%.0f" font-size="11" fill="#333" text-anchor="end">now</text>`,
		pad, h+14, window, w, h+14)
	s.WriteString(`</svg>`)
	c := chart{Route: route, Window: window, SVG: template.HTML(s.String())} // built from numbers and fixed strings only
	for _, cl := range classes {
		c.Totals = append(c.Totals, classTotal{Name: cl.Name, Fill: cl.Fill, Count: int64(totals[cl.Name])})
	}
	return c
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// refusal is one row of "refusals by reason".
type refusal struct {
	Route, Result string
	Hour, Day     int64
}

// refusals lists the non-relayed results with a count over the day.
func refusals(hour, day []bucket) []refusal {
	sum := func(bs []bucket) map[string]float64 {
		m := map[string]float64{}
		for _, b := range bs {
			for k, v := range b.d {
				m[k] += v
			}
		}
		return m
	}
	h, d := sum(hour), sum(day)
	var out []refusal
	for k, v := range d {
		r, res, ok := strings.Cut(k, "/")
		if route, unknown := strings.CutPrefix(k, keyUnknownTokens); unknown {
			r, res = route, "unknown tokens seen"
		}
		if !ok || res == "relayed" || v == 0 {
			continue
		}
		out = append(out, refusal{Route: r, Result: res, Hour: int64(h[k]), Day: int64(v)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Day != out[j].Day {
			return out[i].Day > out[j].Day
		}
		return out[i].Route+out[i].Result < out[j].Route+out[j].Result
	})
	return out
}
