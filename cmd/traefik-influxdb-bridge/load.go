package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
)

// envPrefix starts every environment variable the bridge reads.
const envPrefix = "TIB"

// errConfig marks a configuration the user must fix: the command exits 2.
var errConfig = errors.New("config")

// configError wraps err so that it prints as `config: <err>` and matches errConfig.
func configError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errConfig, fmt.Sprintf(format, args...))
}

// keyInfo is one configuration key: the dotted path of a leaf of config.Config.
type keyInfo struct {
	name  string // "influxdb.password"
	index []int  // field index path into config.Config
	isMap bool   // takes arbitrary sub-keys (tags, traefik.headers)
}

// schema lists the keys of config.Config by walking its mapstructure tags, so a
// key added to the struct is known to viper, the environment and the unknown-key
// check without a second list to keep in step.
type schema struct {
	keys     []keyInfo // sorted by name
	byName   map[string]keyInfo
	sections map[string]bool // non-leaf paths: "influxdb", "influxdb.tls"
}

func newSchema() *schema {
	s := &schema{byName: map[string]keyInfo{}, sections: map[string]bool{}}
	s.walk(reflect.TypeFor[config.Config](), "", nil)
	slices.SortFunc(s.keys, func(a, b keyInfo) int { return strings.Compare(a.name, b.name) })
	return s
}

func (s *schema) walk(t reflect.Type, prefix string, index []int) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + tag
		idx := append(slices.Clone(index), i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
			s.sections[name] = true
			s.walk(f.Type, name+".", idx)
			continue
		}
		k := keyInfo{name: name, index: idx, isMap: f.Type.Kind() == reflect.Map}
		s.keys = append(s.keys, k)
		s.byName[name] = k
	}
}

// envName is the environment variable that sets key.
func envName(key string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// check classifies a key viper reports (lower-cased, dotted).
func (s *schema) check(key string) error {
	if _, ok := s.byName[key]; ok {
		return nil
	}
	for _, k := range s.keys {
		if k.isMap && strings.HasPrefix(key, k.name+".") {
			return nil // a tag name or header name
		}
	}
	if s.sections[key] {
		return configError("%s: must be a mapping of keys, not a single value", key)
	}
	return configError("unknown key %q%s", key, s.suggest(key))
}

// suggest names the known key closest to a typo, if one is close.
func (s *schema) suggest(key string) string {
	best, bestD := "", 3
	for _, k := range s.keys {
		if d := editDistance(key, k.name); d < bestD {
			best, bestD = k.name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// flagKeys are the configuration keys that also have a command-line flag; the
// flag is named after the key (--influxdb.url) so there is nothing to map.
var flagKeys = []struct {
	key, usage string
}{
	{"traefik.urls", "Traefik metrics URLs, comma-separated"},
	{"traefik.interval", "scrape interval, e.g. 10s"},
	{"influxdb.url", "InfluxDB base URL"},
	{"influxdb.database", "InfluxDB database"},
	{"influxdb.username", "InfluxDB user (set the password with TIB_INFLUXDB_PASSWORD or influxdb.password_file)"},
	{"schema", "output schema: traefik, prometheus or telegraf"},
	{"buffer.dir", "directory of the durable buffer; empty keeps the buffer in memory"},
	{"listen", "address of /metrics, /healthz and /readyz; empty disables"},
	{"log.level", "debug, info, warn or error"},
	{"log.format", "text or json"},
}

// addConfigFlags defines one flag per entry of flagKeys on fs, with the
// built-in default shown in the help.
func addConfigFlags(fs *pflag.FlagSet) {
	def := config.Default()
	s := newSchema()
	for _, f := range flagKeys {
		v := reflect.ValueOf(def).FieldByIndex(s.byName[f.key].index)
		switch x := v.Interface().(type) {
		case []string:
			fs.StringSlice(f.key, x, f.usage)
		case time.Duration:
			fs.Duration(f.key, x, f.usage)
		case string:
			fs.String(f.key, x, f.usage)
		default:
			panic(fmt.Sprintf("flag %s: no flag type for %T", f.key, x))
		}
	}
}

// loaded is what loadConfig found besides the configuration itself.
type loaded struct {
	// Warnings are for the process logger once it exists.
	Warnings []string
}

// loadConfig builds the configuration from, lowest precedence first, the
// built-in defaults, the YAML file (if file is not empty), TIB_* environment
// variables and the flags of fs that were set. Every error names the key and
// matches errConfig. The result is validated and secret files are read.
//
// It does what viper's UnmarshalExact does, key by key: UnmarshalExact decodes
// AllSettings, where TIB_TAGS (a string) and the file's tags.* sub-keys
// collide, and its errors name struct fields rather than keys. Here every key
// viper saw is checked against the schema (an unknown one is an error), and
// every known key is decoded on its own with ErrorUnused.
func loadConfig(file string, fs *pflag.FlagSet, environ []string) (*config.Config, loaded, error) {
	var info loaded
	s := newSchema()
	v := viper.New()
	v.SetConfigType("yaml")
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	// AutomaticEnv only answers Get for keys viper has heard of, so every key
	// gets a default and an explicit binding.
	def := reflect.ValueOf(config.Default())
	for _, k := range s.keys {
		v.SetDefault(k.name, def.FieldByIndex(k.index).Interface())
		if err := v.BindEnv(k.name); err != nil {
			return nil, info, fmt.Errorf("bind %s: %w", k.name, err)
		}
	}
	if fs != nil {
		for _, f := range flagKeys {
			if fl := fs.Lookup(f.key); fl != nil {
				if err := v.BindPFlag(f.key, fl); err != nil {
					return nil, info, fmt.Errorf("bind flag %s: %w", f.key, err)
				}
			}
		}
	}

	// Viper lower-cases every key it reads; tag names and header names are
	// data, so they are taken from the file as written.
	var rawMaps map[string]any
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, info, configError("read %s: %v", file, err)
		}
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return nil, info, configError("%s: %v", file, err)
		}
		if err := yaml.Unmarshal(raw, &rawMaps); err != nil {
			return nil, info, configError("%s: %v", file, err)
		}
	}

	keys := v.AllKeys()
	slices.Sort(keys)
	for _, key := range keys {
		if v.Get(key) == nil {
			continue // "influxdb:" with nothing under it
		}
		if err := s.check(key); err != nil {
			return nil, info, err
		}
	}
	info.Warnings = append(info.Warnings, unknownEnv(s, environ)...)

	var cfg config.Config
	out := reflect.ValueOf(&cfg).Elem()
	for _, k := range s.keys {
		val := v.Get(k.name)
		if k.isMap {
			if m, ok := lookupPath(rawMaps, k.name); ok && !envSet(environ, k.name) {
				val = m
			}
		}
		field := out.FieldByIndex(k.index)
		if err := decodeKey(val, field); err != nil {
			if field.Type() == reflect.TypeFor[config.Secret]() {
				// Never risk a decoder message that quotes the value.
				return nil, info, configError("%s: must be a single string", k.name)
			}
			return nil, info, configError("%s: %v", k.name, err)
		}
	}
	if err := readSecretFiles(&cfg); err != nil {
		return nil, info, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, info, fmt.Errorf("%w: %w", errConfig, err)
	}
	return &cfg, info, nil
}

// decodeKey decodes one value (from YAML, an environment string, a flag or a
// default) into the field it belongs to.
func decodeKey(val any, field reflect.Value) error {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			stringToDurationHook,
			mapstructure.TextUnmarshallerHookFunc(),
			stringToListHook,
			stringToMapHook,
		),
		WeaklyTypedInput: true, // "true" and "10" from the environment
		ErrorUnused:      true,
		Result:           field.Addr().Interface(),
	})
	if err != nil {
		return err
	}
	if err := dec.Decode(val); err != nil {
		// mapstructure's message starts with boilerplate and the field name,
		// which the caller replaces with the key.
		var de *mapstructure.DecodeError
		if errors.As(err, &de) {
			return de.Unwrap()
		}
		return err
	}
	return nil
}

// stringToDurationHook reads "10s"; its message quotes the value, which
// time.ParseDuration's does not always do.
func stringToDurationHook(f, t reflect.Type, data any) (any, error) {
	if f.Kind() != reflect.String || t != reflect.TypeFor[time.Duration]() {
		return data, nil
	}
	raw := strings.TrimSpace(reflect.ValueOf(data).String())
	d, err := time.ParseDuration(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid duration %q (want a number with a unit: 500ms, 10s, 1m30s, 2h)", raw)
	}
	return d, nil
}

// stringToListHook reads "a, b,c" (an environment variable) as a list.
func stringToListHook(f, t reflect.Type, data any) (any, error) {
	if f.Kind() != reflect.String || t.Kind() != reflect.Slice || t.Elem().Kind() != reflect.String {
		return data, nil
	}
	raw := reflect.ValueOf(data).String()
	out := []string{}
	for item := range strings.SplitSeq(raw, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out, nil
}

// stringToMapHook reads "k=v,k=v" (an environment variable) as a map.
func stringToMapHook(f, t reflect.Type, data any) (any, error) {
	if f.Kind() != reflect.String || t.Kind() != reflect.Map {
		return data, nil
	}
	raw := reflect.ValueOf(data).String()
	out := map[string]string{}
	for item := range strings.SplitSeq(raw, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, val, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value (want k=v,k=v)", item)
		}
		out[k] = strings.TrimSpace(val)
	}
	return out, nil
}

// lookupPath finds a dotted key in a YAML document decoded into maps.
func lookupPath(doc map[string]any, key string) (any, bool) {
	var cur any = doc
	for part := range strings.SplitSeq(key, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		// YAML keys of sections are matched as viper does: case-insensitively.
		found := false
		for k, val := range m {
			if strings.EqualFold(k, part) {
				cur, found = val, true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	return cur, cur != nil
}

func envSet(environ []string, key string) bool {
	prefix := envName(key) + "="
	for _, kv := range environ {
		if strings.HasPrefix(kv, prefix) && len(kv) > len(prefix) {
			return true
		}
	}
	return false
}

// unknownEnv names TIB_* variables that set no key: a misspelt variable would
// otherwise be ignored without a word. They are warnings, not errors, because
// the same prefix is shared with test switches such as TIB_REQUIRE_REAL.
func unknownEnv(s *schema, environ []string) []string {
	known := map[string]bool{}
	for _, k := range s.keys {
		known[envName(k.name)] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix+"_") && !known[name] && name != "TIB_REQUIRE_REAL" {
			out = append(out, fmt.Sprintf("environment variable %s sets no configuration key; ignored", name))
		}
	}
	slices.Sort(out)
	return out
}

// readSecretFiles replaces inline secrets by the content of their *_file key,
// which wins so a mounted Kubernetes secret overrides a value in the file.
// Surrounding white space is dropped, as the sink does.
func readSecretFiles(cfg *config.Config) error {
	for _, f := range []struct {
		key  string
		path string
		dst  *config.Secret
	}{
		{"influxdb.password_file", cfg.InfluxDB.PasswordFile, &cfg.InfluxDB.Password},
		{"traefik.password_file", cfg.Traefik.PasswordFile, &cfg.Traefik.Password},
		{"traefik.bearer_token_file", cfg.Traefik.BearerTokenFile, &cfg.Traefik.BearerToken},
	} {
		if f.path == "" {
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			// The error names the path, never the content.
			return configError("%s: %v", f.key, err)
		}
		*f.dst = config.Secret(strings.TrimSpace(string(b)))
	}
	return nil
}
