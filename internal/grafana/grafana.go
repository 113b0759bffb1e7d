// Package grafana reads Grafana dashboard JSON far enough to get at its
// InfluxQL: every panel target and every query template variable, and the
// expansion of Grafana's macros and variables into a query InfluxDB can run.
// deploytest checks the dashboards against hand-made data with it, the e2e
// suite against what a real Traefik produced.
package grafana

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Dashboard is the part of a dashboard model that holds queries.
type Dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []Panel `json:"panels"`
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Panel is a panel or a row; a collapsed row keeps its panels inside.
type Panel struct {
	ID      int      `json:"id"`
	Type    string   `json:"type"`
	Title   string   `json:"title"`
	Targets []Target `json:"targets"`
	Panels  []Panel  `json:"panels"`
}

// Target is one query of a panel. Only raw InfluxQL (rawQuery) is supported:
// a query built in Grafana's visual editor is stored as parts, not as text.
type Target struct {
	RefID    string `json:"refId"`
	Query    string `json:"query"`
	RawQuery bool   `json:"rawQuery"`
	Hide     bool   `json:"hide"`
}

// Variable is a template variable. Query is a string for InfluxDB query
// variables and may be an object for other data sources.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

// Query is one InfluxQL text and where it was found.
type Query struct {
	// Source is "panel <id> <title> target <refId>" or "variable <name>".
	Source string
	Text   string
}

// Load reads a dashboard file.
func Load(path string) (*Dashboard, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &d, nil
}

// Queries lists every InfluxQL query of the dashboard: panel targets (inside
// rows too) and query variables, in the dashboard's order. A target that is
// not raw InfluxQL is an error, since its text cannot be checked.
func (d *Dashboard) Queries() ([]Query, error) {
	var out []Query
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var text string
		if err := json.Unmarshal(v.Query, &text); err != nil {
			return nil, fmt.Errorf("variable %s: query is not InfluxQL text: %s", v.Name, v.Query)
		}
		out = append(out, Query{Source: "variable " + v.Name, Text: text})
	}
	var walk func([]Panel) error
	walk = func(panels []Panel) error {
		for _, p := range panels {
			for _, t := range p.Targets {
				if t.Hide {
					continue
				}
				src := fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, t.RefID)
				if !t.RawQuery || strings.TrimSpace(t.Query) == "" {
					return fmt.Errorf("%s: not a raw InfluxQL query", src)
				}
				out = append(out, Query{Source: src, Text: t.Query})
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	return out, nil
}

// Vars are the values Grafana would put into a query.
type Vars struct {
	From, To time.Time
	// Interval is $__interval (Grafana's auto interval for the panel width).
	Interval time.Duration
	// Values are the template variables by name, already in the form Grafana
	// interpolates them (for a multi-value variable inside a regex, "(a|b)";
	// for All with allValue ".*", ".*").
	Values map[string]string
}

// RegexValue is how Grafana's InfluxDB data source interpolates the selected
// values of a multi-value or include-all variable: each value regex-escaped
// (the slash too, since InfluxQL regexes are delimited by it), several
// values as one alternation "(a|b)". Selecting All gives the variable's
// allValue instead, which is not escaped.
func RegexValue(values ...string) string {
	escaped := make([]string, len(values))
	for i, v := range values {
		escaped[i] = regexSpecial.ReplaceAllString(v, `\$0`)
	}
	if len(escaped) == 1 {
		return escaped[0]
	}
	return "(" + strings.Join(escaped, "|") + ")"
}

var regexSpecial = regexp.MustCompile(`[\\^$*+?.()|\[\]{}/]`)

// ref matches ${name}, ${name:format}, [[name]] and $name.
var ref = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::([^}]*))?\}|\[\[([A-Za-z0-9_]+)\]\]|\$([A-Za-z_][A-Za-z0-9_]*)`)

// Expand replaces Grafana's InfluxDB macros ($timeFilter, $__interval,
// $__interval_ms, ${__from:date:seconds}, ${__to:date:seconds} and their ms
// forms) and the template variables in q. A reference to anything else is an
// error, so a query cannot reach InfluxDB with a "$" Grafana would have filled.
func Expand(q string, v Vars) (string, error) {
	var unknown []string
	out := ref.ReplaceAllStringFunc(q, func(m string) string {
		s := ref.FindStringSubmatch(m)
		name, format := s[1]+s[3]+s[4], s[2]
		if val, ok := v.builtin(name, format); ok {
			return val
		}
		if val, ok := v.Values[name]; ok && format == "" {
			return val
		}
		unknown = append(unknown, m)
		return m
	})
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return "", fmt.Errorf("query has references Grafana would fill that are not known here: %s", strings.Join(slices.Compact(unknown), ", "))
	}
	return out, nil
}

func (v Vars) builtin(name, format string) (string, bool) {
	ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
	switch {
	case name == "timeFilter" && format == "":
		return "time >= " + ms(v.From) + "ms and time <= " + ms(v.To) + "ms", true
	case name == "__interval" && format == "":
		return influxDuration(v.Interval), true
	case name == "__interval_ms" && format == "":
		return strconv.FormatInt(v.Interval.Milliseconds(), 10), true
	case name == "__from" || name == "__to":
		t := v.From
		if name == "__to" {
			t = v.To
		}
		switch format {
		case "", "date:milliseconds":
			return ms(t), true
		case "date:seconds":
			return strconv.FormatInt(t.Unix(), 10), true
		}
	}
	return "", false
}

// influxDuration writes d as an InfluxQL duration literal the way Grafana
// does: whole units, the largest that divides it.
func influxDuration(d time.Duration) string {
	for _, u := range []struct {
		unit string
		d    time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}} {
		if d >= u.d && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.unit
		}
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}
