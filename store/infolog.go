package store

// #cgo CXXFLAGS: -std=c++17
// #include <stdlib.h>
// #include <rocksdb/c.h>
// int nexis_set_warn_info_log(rocksdb_options_t* opts, const char* path);
import "C"

import (
	"reflect"
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
	if !optionsLayoutKnown {
		return
	}
	c := *(**C.rocksdb_options_t)(unsafe.Pointer(o))
	cfile := C.CString(file)
	defer C.free(unsafe.Pointer(cfile))
	C.nexis_set_warn_info_log(c, cfile)
}

// optionsLayoutKnown says whether grocksdb.Options starts with the
// pointer to its C options, which it offers no accessor for (go.mod pins
// v1.7.15: newer ones do not build against Debian's RocksDB 7.8). If a
// grocksdb update moves it, RocksDB keeps its own logger and
// TestInfoLogWarnings fails, instead of a wild pointer reaching C.
var optionsLayoutKnown = func() bool {
	t := reflect.TypeFor[grocksdb.Options]()
	if t.NumField() == 0 {
		return false
	}
	f := t.Field(0)
	return f.Name == "c" && f.Offset == 0 && f.Type.Kind() == reflect.Pointer && f.Type.Elem().Name() == "_Ctype_struct_rocksdb_options_t"
}()
