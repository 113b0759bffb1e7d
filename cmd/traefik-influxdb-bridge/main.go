// Command traefik-influxdb-bridge scrapes Traefik's Prometheus metrics and
// writes them to InfluxDB 1.x. It is the only place that knows viper, flags,
// signals, exit codes and the process logger; the work is done by the collector
// and sink packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/config"
)

// version is stamped at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the bridge could not run (port taken, queue unreadable, ...)
	exitUsage   = 2 // bad flags or configuration
)

func main() {
	setDefaultGC()
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// defaultGOGC is the garbage collector's target when GOGC is not set. A
// sidecar's memory is multiplied by the fleet and its CPU is small: at 50
// instead of Go's 100, peak RSS at 100 services went from 34.2 to 29.9 MiB
// with CPU per sample unchanged within noise, and a 20-service sidecar from
// 21.0 to 18.5 MiB (BENCHMARKS.md, "Garbage collector target").
const defaultGOGC = 50

// setDefaultGC applies defaultGOGC unless the operator set GOGC.
func setDefaultGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
}

// run is main without the process: tests call it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("traefik-influxdb-bridge", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	configFile := fs.String("config", "", "YAML configuration file (every key can also be set with TIB_<KEY>, e.g. TIB_INFLUXDB_PASSWORD)")
	once := fs.Bool("once", false, "scrape, print the line protocol the next write would carry, and exit")
	checkConfig := fs.Bool("check-config", false, "validate the configuration, print it with secrets masked, and exit (0 valid, 2 invalid)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	addConfigFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: traefik-influxdb-bridge [flags]\n\nFlags:\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q (the configuration file is given with --config)\n", fs.Arg(0))
		return exitUsage
	}
	if *showVersion {
		fmt.Fprintln(stdout, "traefik-influxdb-bridge", version)
		return exitOK
	}

	cfg, info, err := loadConfig(*configFile, fs, os.Environ())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	if *checkConfig {
		if err := printConfig(stdout, cfg); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailure
		}
		for _, w := range info.Warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
		return exitOK
	}

	log := newLogger(cfg.Log, stderr)
	for _, w := range info.Warnings {
		log.Warn(w)
	}
	warnInsecure(cfg, log)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal the default handling is back, so a second one
	// ends the process at once instead of waiting out shutdown_grace.
	context.AfterFunc(ctx, stop)
	if *once {
		if err := runOnce(ctx, cfg, stdout, log); err != nil {
			log.Error("once failed", "err", err)
			return exitCode(err)
		}
		return exitOK
	}
	log.Info("starting", "version", version, "schema", cfg.Schema, "traefik", cfg.Traefik.URLs,
		"influxdb", config.Redact(cfg.InfluxDB.URL), "database", cfg.InfluxDB.Database, "listen", cfg.Listen)
	if err := runBridge(ctx, cfg, log); err != nil {
		log.Error("bridge stopped", "err", err)
		return exitCode(err)
	}
	return exitOK
}

// exitCode is 2 for a configuration the user must fix, else 1.
func exitCode(err error) int {
	if errors.Is(err, errConfig) {
		return exitUsage
	}
	return exitFailure
}

// printConfig writes the effective configuration as YAML, secrets masked.
func printConfig(w io.Writer, cfg *config.Config) error {
	b, err := yaml.Marshal(cfg.Redacted())
	if err != nil {
		return fmt.Errorf("print config: %w", err)
	}
	_, err = w.Write(b)
	return err
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	// Validate has accepted the level already.
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// warnInsecure says so when the scrape will not verify Traefik's certificate.
// The sink warns about influxdb.tls itself, when it builds its client.
func warnInsecure(cfg *config.Config, log *slog.Logger) {
	if cfg.Traefik.TLS.InsecureSkipVerify {
		log.Warn("traefik.tls.insecure_skip_verify is on: the Traefik server certificate is not verified")
	}
}
