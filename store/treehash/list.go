package treehash

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Entry is a file as a listing shows it: named relative to the listed
// directory.
type Entry struct {
	File
	Name string
}

// ListDir lists the directory dir of a tree's files: its entries, or
// everything below it with recursive; dir itself when it is not a
// directory. ok is false when the tree has no dir.
func ListDir(files []File, dir string, recursive bool) (entries []Entry, ok bool) {
	for _, f := range files {
		if f.Path == dir {
			ok = true
			if f.Type != Directory {
				return []Entry{{f, f.Path}}, true
			}
		}
	}
	if !ok {
		return nil, false
	}
	prefix := dir
	if prefix != "" {
		prefix += "/"
	}
	for _, f := range files {
		rel, below := strings.CutPrefix(f.Path, prefix)
		if !below || f.Path == dir || (!recursive && strings.Contains(rel, "/")) {
			continue
		}
		entries = append(entries, Entry{f, rel})
	}
	return entries, true
}

// MarshalJSON is the entry as `nexis store ls --json` lists it: the
// digest of a file in hex, the fields a type has no meaning for left
// out.
func (e Entry) MarshalJSON() ([]byte, error) {
	type entry struct {
		Name   string `json:"name"`
		Type   string `json:"type"`
		Size   *int64 `json:"size,omitempty"`
		BLAKE3 string `json:"blake3,omitempty"`
		Target string `json:"target,omitempty"`
	}
	out := entry{Name: e.Name, Type: e.Type.String(), Target: e.Target}
	if e.Type.IsRegular() {
		out.Size = &e.Size
		out.BLAKE3 = fmt.Sprintf("%x", e.Digest[:])
	}
	return json.Marshal(out)
}

// Print writes the entry as ls -l would, without owners and times.
func (e Entry) Print(w io.Writer) {
	switch e.Type {
	case Directory:
		fmt.Fprintf(w, "dr-xr-xr-x %12s %s/\n", "", e.Name)
	case Executable:
		fmt.Fprintf(w, "-r-xr-xr-x %12d %s\n", e.Size, e.Name)
	case Regular:
		fmt.Fprintf(w, "-r--r--r-- %12d %s\n", e.Size, e.Name)
	case Symlink:
		fmt.Fprintf(w, "lrwxrwxrwx %12s %s -> %s\n", "", e.Name, e.Target)
	}
}
