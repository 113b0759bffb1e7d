package main

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSmaps(t *testing.T) {
	const smaps = `00400000-0090b000 r-xp 00000000 fe:00 11288661                           /bin/tib
Size:               5164 kB
Rss:                4652 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me dw sd
0090b000-00e6a000 r--p 0050b000 fe:00 11288661                           /bin/tib
Anonymous:             8 kB
VmFlags: rd mr mw me dw sd
00e6a000-00ed7000 rw-p 00a6a000 fe:00 11288661                           /bin/tib
Anonymous:           372 kB
7f0d53cb0000-7f0d54000000 rw-p 00000000 00:00 0 
Anonymous:          1564 kB
`
	got := parseSmaps([]byte(smaps))
	require.Equal(t, []mapping{
		{lo: 0x400000, hi: 0x90b000, perms: "r-xp", dev: "fe:00", inode: 11288661},
		{lo: 0x90b000, hi: 0xe6a000, perms: "r--p", dev: "fe:00", inode: 11288661, anon: 8},
		{lo: 0xe6a000, hi: 0xed7000, perms: "rw-p", dev: "fe:00", inode: 11288661, anon: 372},
		{lo: 0x7f0d53cb0000, hi: 0x7f0d54000000, perms: "rw-p", dev: "00:00", inode: 0, anon: 1564},
	}, got)
}

func TestDropExecutablePagesLowersFileRSS(t *testing.T) {
	if traced() {
		t.Skip("a tracer is attached")
	}
	before := rssFileKB(t)
	n, err := dropExecutablePages()
	require.NoError(t, err)
	require.Positive(t, n)
	after := rssFileKB(t)
	require.Less(t, after, before, "the test binary's code and read-only data are mapped again only as used")
	// The code runs on, faulting back what it needs.
	require.Equal(t, "42", strconv.Itoa(42))
}

func rssFileKB(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}
