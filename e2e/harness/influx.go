package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/internal/influxtest"
)

// Row is one row of a /query answer run with GROUP BY *: the series' tags
// (tags the series does not have, which InfluxDB lists as "", are left out)
// and its numeric columns other than time.
type Row struct {
	Measurement string
	Tags        map[string]string
	Fields      map[string]float64
}

// QueryRows runs q in db and flattens the answer into rows.
func QueryRows(ctx context.Context, srv *influxtest.Server, db, q string) ([]Row, error) {
	series, err := srv.Query(ctx, db, q)
	if err != nil {
		return nil, err
	}
	var rows []Row
	for _, s := range series {
		tags := map[string]string{}
		for k, v := range s.Tags {
			if v != "" {
				tags[k] = v
			}
		}
		for _, vals := range s.Values {
			r := Row{Measurement: s.Name, Tags: tags, Fields: map[string]float64{}}
			for i, col := range s.Columns {
				if col == "time" || i >= len(vals) || vals[i] == nil {
					continue
				}
				f, err := number(vals[i])
				if err != nil {
					return nil, fmt.Errorf("%s %v column %s: %w", s.Name, tags, col, err)
				}
				r.Fields[col] = f
			}
			rows = append(rows, r)
		}
	}
	return rows, nil
}

func number(v any) (float64, error) {
	switch x := v.(type) {
	case json.Number:
		return x.Float64()
	case float64:
		return x, nil
	case string:
		return strconv.ParseFloat(x, 64)
	}
	return 0, fmt.Errorf("not a number: %v (%T)", v, v)
}

// traefikFamilies maps the measurements of Traefik v2's InfluxDB exporter
// (docs/reference: "the schema existing dashboards query") to the Traefik v3
// Prometheus families they carry. Written out from the reference, not taken
// from the bridge, so the suite checks the bridge's naming too.
var traefikFamilies = func() map[string]string {
	m := map[string]string{
		"traefik.config.reload.total":                "traefik_config_reloads_total",
		"traefik.config.reload.lastSuccessTimestamp": "traefik_config_last_reload_success",
		"traefik.open.connections":                   "traefik_open_connections",
		"traefik.tls.certs.notAfterTimestamp":        "traefik_tls_certs_not_after",
		"traefik.service.retries.total":              "traefik_service_retries_total",
		"traefik.service.server.up":                  "traefik_service_server_up",
	}
	for _, level := range []string{"entrypoint", "router", "service"} {
		m["traefik."+level+".requests.total"] = "traefik_" + level + "_requests_total"
		m["traefik."+level+".requests.tls.total"] = "traefik_" + level + "_requests_tls_total"
		m["traefik."+level+".request.duration"] = "traefik_" + level + "_request_duration_seconds"
		m["traefik."+level+".requests.bytes.total"] = "traefik_" + level + "_requests_bytes_total"
		m["traefik."+level+".responses.bytes.total"] = "traefik_" + level + "_responses_bytes_total"
	}
	return m
}()

// TraefikFamily is the Prometheus family a traefik-schema measurement carries.
func TraefikFamily(measurement string) (string, bool) {
	f, ok := traefikFamilies[measurement]
	return f, ok
}

// TraefikMeasurement is the traefik-schema measurement of a Prometheus family.
func TraefikMeasurement(family string) (string, bool) {
	for m, f := range traefikFamilies {
		if f == family {
			return m, true
		}
	}
	return "", false
}

// FromTraefikSchema turns rows of the traefik schema back into samples named
// as Traefik names them: field of a histogram measurement becomes the
// family's _<field> sample (count → _count), of any other measurement the
// family's own sample. Tags become labels, the bridge's own tags included.
func FromTraefikSchema(rows []Row, field string) ([]Sample, error) {
	var out []Sample
	for _, r := range rows {
		v, ok := r.Fields[field]
		if !ok {
			continue
		}
		family, ok := TraefikFamily(r.Measurement)
		if !ok {
			return nil, fmt.Errorf("measurement %q is not one of Traefik v2's", r.Measurement)
		}
		name := family
		if strings.HasSuffix(family, "_duration_seconds") {
			name += "_" + field
		}
		out = append(out, Sample{Name: name, Labels: maps.Clone(r.Tags), Value: v})
	}
	return out, nil
}

// FromPrometheusSchema turns rows of the prometheus schema (measurement =
// sample name, field value) into samples, leaving out the bridge's own
// metrics (selfPrefix).
func FromPrometheusSchema(rows []Row, selfPrefix string) []Sample {
	var out []Sample
	for _, r := range rows {
		v, ok := r.Fields["value"]
		if !ok || strings.HasPrefix(r.Measurement, selfPrefix) {
			continue
		}
		out = append(out, Sample{Name: r.Measurement, Labels: maps.Clone(r.Tags), Value: v})
	}
	return out
}

// FromTelegrafSchema turns rows of the telegraf schema (measurement = family;
// fields counter, gauge, value, or count, sum and one per bucket bound) into
// the samples of the Prometheus text format, leaving out the bridge's own
// metrics (selfPrefix).
func FromTelegrafSchema(rows []Row, selfPrefix string) []Sample {
	var out []Sample
	for _, r := range rows {
		if strings.HasPrefix(r.Measurement, selfPrefix) {
			continue
		}
		for field, v := range r.Fields {
			s := Sample{Name: r.Measurement, Labels: maps.Clone(r.Tags), Value: v}
			switch field {
			case "counter", "gauge", "value":
			case "count", "sum":
				s.Name += "_" + field
			default:
				s.Name += "_bucket"
				s.Labels["le"] = field
			}
			out = append(out, s)
		}
	}
	return out
}

// ByInstance checks that every sample carries the tags the bridge adds —
// each of static with its value, and instanceTag unless it is "" (the bridge
// adds it only when it scrapes several Traefiks) — removes them, and groups
// what is left by instance ("" without instanceTag). Two samples of one
// instance with the same series key are an error: the instances' points must
// stay apart.
func ByInstance(samples []Sample, instanceTag string, static map[string]string) (map[string]Samples, error) {
	out := map[string]Samples{}
	var problems []string
	for _, s := range samples {
		for k, want := range static {
			if got := s.Labels[k]; got != want {
				problems = append(problems, fmt.Sprintf("%s: tag %s=%q, want %q", s.Key(), k, got, want))
			}
			delete(s.Labels, k)
		}
		inst := ""
		if instanceTag != "" {
			inst = s.Labels[instanceTag]
			if inst == "" {
				problems = append(problems, fmt.Sprintf("%s: no %s tag", s.Key(), instanceTag))
			}
			delete(s.Labels, instanceTag)
		}
		if out[inst] == nil {
			out[inst] = Samples{}
		}
		if _, dup := out[inst][s.Key()]; dup {
			problems = append(problems, fmt.Sprintf("%s: twice for instance %q", s.Key(), inst))
		}
		out[inst][s.Key()] = s
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("... and %d more", len(problems)-10))
		}
		return out, fmt.Errorf("bridge tags:\n%s", strings.Join(problems, "\n"))
	}
	return out, nil
}

// Values is the value of each sample by series key, the zeros left out:
// a counter that did not move has no point in InfluxDB.
func (s Samples) Values() map[string]float64 {
	out := map[string]float64{}
	for k, v := range s {
		if v.Value != 0 {
			out[k] = v.Value
		}
	}
	return out
}
