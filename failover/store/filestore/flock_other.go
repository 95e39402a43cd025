//go:build !unix

package filestore

import (
	"errors"
	"os"
)

var errNoFlock = errors.New("filestore: file locks need flock(2), available on unix systems only")

func flock(*os.File, bool) (bool, error) { return false, errNoFlock }

func funlock(*os.File) error { return errNoFlock }
