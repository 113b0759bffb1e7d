package grafana

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestExpand(t *testing.T) {
	from := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	vars := Vars{
		From:     from,
		To:       from.Add(time.Hour),
		Interval: 10 * time.Second,
		Values:   map[string]string{"host": ".*", "service": "(api|shop)", "host_group": "edge"},
	}
	tests := []struct {
		name, in, want, wantErr string
	}{
		{
			name: "time filter and interval",
			in:   `SELECT sum("count") FROM "m" WHERE $timeFilter GROUP BY time($__interval)`,
			want: `SELECT sum("count") FROM "m" WHERE time >= 1795593600000ms and time <= 1795597200000ms GROUP BY time(10s)`,
		},
		{
			name: "interval_ms is not interval followed by _ms",
			in:   `SELECT sum("count") * 1000 / $__interval_ms FROM "m"`,
			want: `SELECT sum("count") * 1000 / 10000 FROM "m"`,
		},
		{
			name: "variable inside regex anchors",
			in:   `WHERE "host" =~ /^$host$/ AND "service" =~ /^$service$/`,
			want: `WHERE "host" =~ /^.*$/ AND "service" =~ /^(api|shop)$/`,
		},
		{
			name: "longest variable name wins",
			in:   `WHERE "g" = '$host_group' AND "h" =~ /^$host$/`,
			want: `WHERE "g" = 'edge' AND "h" =~ /^.*$/`,
		},
		{
			name: "braces and brackets",
			in:   `WHERE "a" =~ /${host}/ AND "b" =~ /[[service]]/`,
			want: `WHERE "a" =~ /.*/ AND "b" =~ /(api|shop)/`,
		},
		{
			name: "range ends with a date format",
			in:   `SELECT (last("value") - ${__to:date:seconds}) / 86400, ${__from:date:seconds}, ${__from}`,
			want: `SELECT (last("value") - 1795597200) / 86400, 1795593600, 1795593600000`,
		},
		{
			name:    "unknown variable",
			in:      `WHERE "e" =~ /^$entrypoint$/ AND $timeFilter`,
			wantErr: "$entrypoint",
		},
		{
			name:    "unknown format of a variable",
			in:      `WHERE "h" =~ /${host:csv}/`,
			wantErr: "${host:csv}",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Expand(tt.in, vars)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestInfluxDuration(t *testing.T) {
	for _, tt := range []struct {
		in   time.Duration
		want string
	}{
		{10 * time.Second, "10s"},
		{90 * time.Second, "90s"},
		{2 * time.Minute, "2m"},
		{time.Hour, "1h"},
		{1500 * time.Millisecond, "1500ms"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			require.Equal(t, tt.want, influxDuration(tt.in))
		})
	}
}

func TestQueries(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		want    []Query
		wantErr string
	}{
		{
			name: "variables, panels and collapsed rows",
			json: `{"templating": {"list": [
				{"name": "datasource", "type": "datasource", "query": "influxdb"},
				{"name": "host", "type": "query", "query": "SHOW TAG VALUES WITH KEY = \"host\""},
				{"name": "range", "type": "custom", "query": "1h,6h"}
			]},
			"panels": [
				{"id": 1, "type": "timeseries", "title": "A", "targets": [
					{"refId": "A", "rawQuery": true, "query": "SELECT 1"},
					{"refId": "B", "rawQuery": true, "query": "SELECT 2", "hide": true}
				]},
				{"id": 2, "type": "row", "title": "R", "collapsed": true, "panels": [
					{"id": 3, "type": "stat", "title": "C", "targets": [{"refId": "A", "rawQuery": true, "query": "SELECT 3"}]}
				]}
			]}`,
			want: []Query{
				{Source: "variable host", Text: `SHOW TAG VALUES WITH KEY = "host"`},
				{Source: `panel 1 "A" target A`, Text: "SELECT 1"},
				{Source: `panel 3 "C" target A`, Text: "SELECT 3"},
			},
		},
		{
			name:    "visual editor target",
			json:    `{"panels": [{"id": 7, "title": "built", "targets": [{"refId": "A", "measurement": "m", "select": [[{"type": "field", "params": ["value"]}]]}]}]}`,
			wantErr: `panel 7 "built" target A: not a raw InfluxQL query`,
		},
		{
			name:    "query variable of another data source",
			json:    `{"templating": {"list": [{"name": "q", "type": "query", "query": {"query": "label_values(up, job)"}}]}}`,
			wantErr: "variable q",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "d.json")
			require.NoError(t, os.WriteFile(path, []byte(tt.json), 0o600))
			d, err := Load(path)
			require.NoError(t, err)
			got, err := d.Queries()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestRegexValue(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string
	}{
		{name: "one plain value", values: []string{"e2e-host"}, want: "e2e-host"},
		{name: "dots and slashes", values: []string{"10.0.0.1/metrics"}, want: `10\.0\.0\.1\/metrics`},
		{name: "every special character", values: []string{`\^$*+?.()|[]{}`}, want: `\\\^\$\*\+\?\.\(\)\|\[\]\{\}`},
		{name: "several values", values: []string{"api-svc@file", "shop.svc"}, want: `(api-svc@file|shop\.svc)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RegexValue(tt.values...)
			require.Equal(t, tt.want, got)
			// Inside /^...$/ the value matches itself, and only itself.
			re := regexp.MustCompile("^" + got + "$")
			for _, v := range tt.values {
				require.True(t, re.MatchString(v), v)
				require.False(t, re.MatchString(v+"x"), v)
			}
		})
	}
}
