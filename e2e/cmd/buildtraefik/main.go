// Command buildtraefik builds the pinned Traefik into e2e/.cache (once; later
// runs find it there) and prints its path. e2e/run.sh runs it before the
// suite so the long first build shows its progress instead of sitting inside
// a silent go test.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/traefik-influxdb-bridge/traefik-influxdb-bridge/e2e/harness"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	root, err := harness.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "buildtraefik:", err)
		os.Exit(1)
	}
	bin, err := harness.TraefikBinary(ctx, root, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "buildtraefik:", err)
		os.Exit(1)
	}
	fmt.Println(bin)
}
