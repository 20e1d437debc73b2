// Command fiemap is the VM test's extent checker. busybox has no
// `xfs_io -c fiemap` and x/sys has no FIEMAP helper, so this program
// issues FS_IOC_FIEMAP itself.
//
//	fiemap FILE...        print each file's extents
//	fiemap -shared A B    exit 0 only when A and B are distinct inodes
//	                      (a reflink, not a hard link) whose data sits in
//	                      the same physical extents, each flagged shared
//
// It is built static (CGO_ENABLED=0) into the VM test's initramfs.
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	fsIocFiemap  = 0xC020660B // _IOWR('f', 11, struct fiemap)
	flagSync     = 0x1        // FIEMAP_FLAG_SYNC
	extentLast   = 0x1        // FIEMAP_EXTENT_LAST
	extentShared = 0x2000     // FIEMAP_EXTENT_SHARED
	headerSize   = 32         // struct fiemap without its extents
	extentSize   = 56         // struct fiemap_extent
	maxExtents   = 512
)

type extent struct {
	Logical, Physical, Length uint64
	Flags                     uint32
}

// extents returns the file's extents, its data flushed first.
func extents(path string) ([]extent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var all []extent
	var start uint64
	for {
		buf := make([]byte, headerSize+maxExtents*extentSize)
		le := binary.LittleEndian
		le.PutUint64(buf[0:], start)
		le.PutUint64(buf[8:], ^uint64(0)-start) // to the end of the file
		le.PutUint32(buf[16:], flagSync)
		le.PutUint32(buf[24:], maxExtents)
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&buf[0])))
		if errno != 0 {
			return nil, fmt.Errorf("%s: FS_IOC_FIEMAP: %w", path, syscall.Errno(errno))
		}
		n := le.Uint32(buf[20:])
		if n == 0 {
			return all, nil
		}
		last := false
		for i := uint32(0); i < n; i++ {
			e := buf[headerSize+int(i)*extentSize:]
			x := extent{
				Logical:  le.Uint64(e[0:]),
				Physical: le.Uint64(e[8:]),
				Length:   le.Uint64(e[16:]),
				Flags:    le.Uint32(e[40:]),
			}
			all = append(all, x)
			start = x.Logical + x.Length
			last = x.Flags&extentLast != 0
		}
		if last {
			return all, nil
		}
	}
}

func show(path string, ex []extent) {
	for _, e := range ex {
		fmt.Printf("%s: logical %d physical %d length %d flags %#x\n", path, e.Logical, e.Physical, e.Length, e.Flags)
	}
}

// shared checks that a and b are one content in shared extents.
func shared(a, b string) error {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return err
	}
	if err := unix.Stat(b, &sb); err != nil {
		return err
	}
	if sa.Dev == sb.Dev && sa.Ino == sb.Ino {
		return fmt.Errorf("%s and %s are one inode (a hard link, not a reflink)", a, b)
	}
	if sa.Size != sb.Size || sa.Size == 0 {
		return fmt.Errorf("sizes %d and %d: want two equal, non-empty files", sa.Size, sb.Size)
	}
	ea, err := extents(a)
	if err != nil {
		return err
	}
	eb, err := extents(b)
	if err != nil {
		return err
	}
	show(a, ea)
	show(b, eb)
	if len(ea) == 0 || len(ea) != len(eb) {
		return fmt.Errorf("%d and %d extents: want the same, non-zero number", len(ea), len(eb))
	}
	for i := range ea {
		x, y := ea[i], eb[i]
		if x.Physical != y.Physical || x.Length != y.Length || x.Logical != y.Logical {
			return fmt.Errorf("extent %d differs: physical %d+%d and %d+%d", i, x.Physical, x.Length, y.Physical, y.Length)
		}
		if x.Flags&extentShared == 0 || y.Flags&extentShared == 0 {
			return fmt.Errorf("extent %d is not flagged shared (flags %#x, %#x)", i, x.Flags, y.Flags)
		}
	}
	fmt.Printf("shared: %s and %s: %d extents, %d bytes, one copy on disk\n", a, b, len(ea), sa.Size)
	return nil
}

func main() {
	args := os.Args[1:]
	if len(args) == 3 && args[0] == "-shared" {
		if err := shared(args[1], args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "fiemap:", err)
			os.Exit(1)
		}
		return
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: fiemap FILE... | fiemap -shared A B")
		os.Exit(2)
	}
	for _, p := range args {
		ex, err := extents(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fiemap:", err)
			os.Exit(1)
		}
		show(p, ex)
	}
}
