package main

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSetDefaultGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })

	t.Run("GOGC unset takes the default", func(t *testing.T) {
		t.Setenv("GOGC", "")
		debug.SetGCPercent(100)
		setDefaultGC()
		require.Equal(t, defaultGOGC, debug.SetGCPercent(100))
	})
	t.Run("GOGC set by the operator is left alone", func(t *testing.T) {
		t.Setenv("GOGC", "200")
		debug.SetGCPercent(200) // what the runtime read from GOGC at start
		setDefaultGC()
		require.Equal(t, 200, debug.SetGCPercent(100))
	})
}
