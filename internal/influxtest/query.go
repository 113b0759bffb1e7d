package influxtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Series is one series of a /query answer. Values keep InfluxDB's JSON
// numbers as json.Number: note that JSON cannot tell the float 1 from the
// integer 1, so check field types with SHOW FIELD KEYS (see FieldTypes).
type Series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

type queryResponse struct {
	Results []struct {
		StatementID int      `json:"statement_id"`
		Series      []Series `json:"series"`
		Error       string   `json:"error"`
	} `json:"results"`
	Error string `json:"error"`
}

// Query runs InfluxQL q against database db (may be empty) with the admin's
// credentials and returns the series of every statement, in order. An error
// from any statement is returned.
func (s *Server) Query(ctx context.Context, db, q string) ([]Series, error) {
	return s.query(ctx, db, q, true)
}

// Exec runs statements that return no series (CREATE, GRANT, DROP).
func (s *Server) Exec(ctx context.Context, q string) error {
	_, err := s.query(ctx, "", q, true)
	return err
}

func (s *Server) exec(ctx context.Context, db, q string, auth bool) error {
	_, err := s.query(ctx, db, q, auth)
	return err
}

func (s *Server) query(ctx context.Context, db, q string, auth bool) ([]Series, error) {
	form := url.Values{"q": {q}}
	if db != "" {
		form.Set("db", db)
	}
	// POST runs every kind of statement; GET refuses the ones that write.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth && s.Username != "" {
		req.SetBasicAuth(s.Username, s.Password)
	}
	client := s.HTTPClient()
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	var qr queryResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&qr); err != nil {
		return nil, fmt.Errorf("query %q: %s: %.200q", q, resp.Status, body)
	}
	if qr.Error != "" {
		return nil, fmt.Errorf("query %q: %s: %s", q, resp.Status, qr.Error)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("query %q: %s", q, resp.Status)
	}
	var out []Series
	var errs []error
	for _, r := range qr.Results {
		if r.Error != "" {
			errs = append(errs, fmt.Errorf("query %q: statement %d: %s", q, r.StatementID, r.Error))
		}
		out = append(out, r.Series...)
	}
	return out, errors.Join(errs...)
}

// CreateDatabase creates db (doing nothing if it exists).
func (s *Server) CreateDatabase(ctx context.Context, db string) error {
	return s.Exec(ctx, "CREATE DATABASE "+quoteIdent(db))
}

// CreateUser creates a non-admin user; for each database in grants it grants
// the privilege given ("READ", "WRITE" or "ALL"). With no grants the user can
// authenticate but is refused every read and write (403), which is how tests
// provoke a privilege error.
func (s *Server) CreateUser(ctx context.Context, name, password string, grants map[string]string) error {
	if err := s.Exec(ctx, fmt.Sprintf("CREATE USER %s WITH PASSWORD '%s'", quoteIdent(name), quoteString(password))); err != nil {
		return err
	}
	for db, priv := range grants {
		switch priv {
		case "READ", "WRITE", "ALL":
		default:
			return fmt.Errorf("influxtest: privilege %q: want READ, WRITE or ALL", priv)
		}
		if err := s.Exec(ctx, fmt.Sprintf("GRANT %s ON %s TO %s", priv, quoteIdent(db), quoteIdent(name))); err != nil {
			return err
		}
	}
	return nil
}

// FieldTypes returns field key -> type ("float", "integer", "string",
// "boolean") of a measurement, from SHOW FIELD KEYS.
func (s *Server) FieldTypes(ctx context.Context, db, measurement string) (map[string]string, error) {
	series, err := s.Query(ctx, db, "SHOW FIELD KEYS FROM "+quoteIdent(measurement))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, sr := range series {
		for _, row := range sr.Values {
			if len(row) == 2 {
				k, _ := row[0].(string)
				t, _ := row[1].(string)
				out[k] = t
			}
		}
	}
	return out, nil
}

// quoteIdent quotes an InfluxQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// quoteString escapes the inside of an InfluxQL single-quoted string.
func quoteString(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}
