//go:build !linux

package storage

import "os"

// Only Linux has sync_file_range; elsewhere the kernel decides alone.
const writebackSupported = false

func startWriteback(*os.File, int64, int64) error { return nil }

func dropCache(*os.File, int64, int64) error { return nil }
