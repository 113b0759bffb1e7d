package deploytest

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var (
	bridgeOnce sync.Once
	bridgePath string
	bridgeErr  error
)

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return fmt.Sprintf("go build: %v\n%s", e.err, e.out) }

func TestMain(m *testing.M) {
	code := m.Run()
	if bridgePath != "" {
		os.RemoveAll(filepath.Dir(bridgePath))
	}
	if helmHomeDir != "" {
		os.RemoveAll(helmHomeDir)
	}
	os.Exit(code)
}
