package store

// #cgo CXXFLAGS: -std=c++17 -O2
// #include <stdlib.h>
// #include <rocksdb/c.h>
// void nexis_set_warn_info_log(rocksdb_options_t* opts, const char* path);
import "C"

import (
	"unsafe"

	"github.com/linxGnu/grocksdb"
)

// RocksDB's own info log writes every option of every column family at
// "header" level, which no log level filters, on every open: 100 KB and
// about 6 ms of a writable open here, a seventh of a one-file `nexis
// switch`. The store gives RocksDB a logger of its own instead
// (infolog.cc) that appends warnings and errors to file, opened at the
// first one, and drops the rest.
func setWarnInfoLog(o *grocksdb.Options, file string) {
	// grocksdb keeps the C options as the first field of Options and has
	// no accessor for them. go.mod pins grocksdb v1.7.15 (newer ones do
	// not build against Debian's RocksDB 7.8); TestInfoLogWarnings fails
	// if this stops reaching RocksDB.
	c := *(**C.rocksdb_options_t)(unsafe.Pointer(o))
	cfile := C.CString(file)
	defer C.free(unsafe.Pointer(cfile))
	C.nexis_set_warn_info_log(c, cfile)
}
