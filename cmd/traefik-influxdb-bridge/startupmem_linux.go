package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"syscall"
)

// dropExecutablePages unmaps the resident pages of this executable's
// read-only mappings (code, read-only data) and returns how many bytes of
// address space it advised. The pages are clean copies of the file: the next
// access maps them again from the page cache (a minor fault), so nothing is
// lost, and a page the running bridge never touches again stops counting in
// its RSS. Writable mappings (.data, .bss) are never touched, nor a read-only
// one holding private copies (a debugger's breakpoints), nor any mapping
// while a tracer is attached.
func dropExecutablePages() (int64, error) {
	if traced() {
		return 0, errors.New("a tracer is attached")
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	maps := parseSmaps(smaps)
	// The executable is the file mapped where this function's code is.
	pc := uint64(reflect.ValueOf(dropExecutablePages).Pointer())
	var exe *mapping
	for i := range maps {
		if maps[i].lo <= pc && pc < maps[i].hi {
			exe = &maps[i]
			break
		}
	}
	if exe == nil || exe.inode == 0 {
		return 0, errors.New("the executable's mapping is not in /proc/self/smaps")
	}
	var n int64
	for _, m := range maps {
		if m.dev != exe.dev || m.inode != exe.inode || strings.ContainsRune(m.perms, 'w') || m.anon != 0 {
			continue
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(m.lo), uintptr(m.hi-m.lo), syscall.MADV_DONTNEED); errno != 0 {
			return n, fmt.Errorf("madvise %x-%x: %w", m.lo, m.hi, errno)
		}
		n += int64(m.hi - m.lo)
	}
	return n, nil
}

// mapping is one entry of /proc/self/smaps.
type mapping struct {
	lo, hi uint64
	perms  string // "r-xp"
	dev    string // "fe:00"
	inode  uint64
	anon   int64 // Anonymous: kB of private copies in a file mapping
}

// parseSmaps reads the header line of each mapping
// ("00400000-0090b000 r-xp 00000000 fe:00 11288661  /path") and its
// Anonymous: line; other lines are skipped.
func parseSmaps(b []byte) []mapping {
	var out []mapping
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, ":"); ok && len(out) > 0 && k == "Anonymous" {
			f := strings.Fields(v)
			if len(f) > 0 {
				out[len(out)-1].anon, _ = strconv.ParseInt(f[0], 10, 64)
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		l, err1 := strconv.ParseUint(lo, 16, 64)
		h, err2 := strconv.ParseUint(hi, 16, 64)
		ino, err3 := strconv.ParseUint(f[4], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue // a "Key: value" line whose key holds no colon-free range
		}
		out = append(out, mapping{lo: l, hi: h, perms: f[1], dev: f[3], inode: ino})
	}
	return out
}

// traced reports whether a debugger or tracer is attached (TracerPid in
// /proc/self/status): its breakpoints live in the pages this would drop.
func traced() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "TracerPid:"); ok {
			return strings.TrimSpace(v) != "0"
		}
	}
	return false
}
