//go:build !linux

package main

// dropExecutablePages is a Linux measure (madvise on the mappings listed in
// /proc/self/smaps); elsewhere the pages stay mapped.
func dropExecutablePages() (int64, error) { return 0, nil }
