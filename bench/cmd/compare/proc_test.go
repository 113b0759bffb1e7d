package main

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTrackMemSeesTheProcessGrow(t *testing.T) {
	stop := trackMem(os.Getpid(), time.Millisecond)
	before := procMemStatus(os.Getpid())
	ballast := make([]byte, 64<<20)
	for i := range ballast { // touch every page, or it is not resident
		ballast[i] = 1
	}
	time.Sleep(20 * time.Millisecond)
	got := stop()
	require.Equal(t, got, stop(), "stop is idempotent")
	require.Positive(t, got.Samples)
	require.Greater(t, got.Max.Anon, before.Anon+32<<20, "the ballast is anonymous memory")
	require.GreaterOrEqual(t, got.MaxAnon, got.Max.Anon)
	require.Positive(t, got.MaxFile, "the test binary's own pages")
	ballast[len(ballast)-1] = 2 // keep it alive until here
}
