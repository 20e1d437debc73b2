package trash

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// io_uring deletion (Options.Uring): a bucket's files are unlinked with
// IORING_OP_UNLINKAT in batches of one submission each, then its
// directories; Linux 5.11 or later. Raw system calls: the ring is a
// small thing, and no io_uring module for Go is packaged here.

const (
	opUnlinkat     = 36 // IORING_OP_UNLINKAT
	enterGetEvents = 1  // IORING_ENTER_GETEVENTS
	offSQRing      = 0
	offCQRing      = 0x8000000
	offSQEs        = 0x10000000
	ringEntries    = 256
	sqeSize        = 64
	cqeSize        = 16
	atRemoveDir    = unix.AT_REMOVEDIR
)

type sqOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqOffsets
	cqOff                                                                  cqOffsets
}

type ring struct {
	fd             int
	sqMem, cqMem   []byte
	sqes           []byte
	sqTail, sqMask *uint32
	sqArray        unsafe.Pointer
	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           unsafe.Pointer
	pending        int
	names          [][]byte // kept alive until their operations complete
	results        []int32
	sqEntries      uint32
}

func newRing() (*ring, error) {
	var p uringParams
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, ringEntries, uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	r := &ring{fd: int(fd), sqEntries: p.sqEntries}
	fail := func(err error) (*ring, error) {
		r.close()
		return nil, err
	}
	sqLen := int(p.sqOff.array) + int(p.sqEntries)*4
	cqLen := int(p.cqOff.cqes) + int(p.cqEntries)*cqeSize
	var err error
	if r.sqMem, err = unix.Mmap(r.fd, offSQRing, sqLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return fail(fmt.Errorf("io_uring mmap: %w", err))
	}
	if r.cqMem, err = unix.Mmap(r.fd, offCQRing, cqLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return fail(fmt.Errorf("io_uring mmap: %w", err))
	}
	if r.sqes, err = unix.Mmap(r.fd, offSQEs, int(p.sqEntries)*sqeSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return fail(fmt.Errorf("io_uring mmap: %w", err))
	}
	sq := unsafe.Pointer(&r.sqMem[0])
	cq := unsafe.Pointer(&r.cqMem[0])
	r.sqTail = (*uint32)(unsafe.Add(sq, p.sqOff.tail))
	r.sqMask = (*uint32)(unsafe.Add(sq, p.sqOff.ringMask))
	r.sqArray = unsafe.Add(sq, p.sqOff.array)
	r.cqHead = (*uint32)(unsafe.Add(cq, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(cq, p.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(cq, p.cqOff.ringMask))
	r.cqes = unsafe.Add(cq, p.cqOff.cqes)
	return r, nil
}

func (r *ring) close() {
	for _, m := range [][]byte{r.sqes, r.cqMem, r.sqMem} {
		if m != nil {
			unix.Munmap(m)
		}
	}
	unix.Close(r.fd)
}

// unlinkat queues unlinkat(dirfd, name, flags); the result of the n-th
// queued operation since the last wait is results[n].
func (r *ring) unlinkat(dirfd int, name string, flags uint32) error {
	if r.pending == int(r.sqEntries) {
		if err := r.wait(); err != nil {
			return err
		}
	}
	b := append([]byte(name), 0)
	r.names = append(r.names, b)
	tail := atomic.LoadUint32(r.sqTail)
	idx := tail & *r.sqMask
	sqe := r.sqes[int(idx)*sqeSize : int(idx+1)*sqeSize]
	clear(sqe)
	sqe[0] = opUnlinkat
	*(*int32)(unsafe.Pointer(&sqe[4])) = int32(dirfd)
	*(*uint64)(unsafe.Pointer(&sqe[16])) = uint64(uintptr(unsafe.Pointer(&b[0])))
	*(*uint32)(unsafe.Pointer(&sqe[28])) = flags
	*(*uint64)(unsafe.Pointer(&sqe[32])) = uint64(len(r.results) + r.pending)
	*(*uint32)(unsafe.Add(r.sqArray, idx*4)) = idx
	atomic.StoreUint32(r.sqTail, tail+1)
	r.pending++
	return nil
}

// wait submits what is queued and collects every completion.
func (r *ring) wait() error {
	n := r.pending
	if n == 0 {
		return nil
	}
	base := len(r.results)
	r.results = append(r.results, make([]int32, n)...)
	submitted := 0
	for got := 0; got < n; {
		toSubmit := n - submitted
		ret, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), 1, enterGetEvents, 0, 0)
		if errno != 0 && errno != unix.EINTR {
			return fmt.Errorf("io_uring_enter: %w", errno)
		}
		if errno == 0 {
			submitted += int(ret)
		}
		head := atomic.LoadUint32(r.cqHead)
		tail := atomic.LoadUint32(r.cqTail)
		for ; head != tail; head++ {
			cqe := unsafe.Add(r.cqes, uintptr(head&r.cqMask)*cqeSize)
			ud := *(*uint64)(cqe)
			res := *(*int32)(unsafe.Add(cqe, 8))
			if i := int(ud); i >= base && i < base+n {
				r.results[i] = res
			}
			got++
		}
		atomic.StoreUint32(r.cqHead, head)
	}
	r.pending = 0
	r.names = r.names[:0]
	return nil
}

// uringDelete deletes a unit's trees: every file of every tree through
// the ring, then the trees' directories; whatever the ring cannot
// delete (a subdirectory, a read-only directory as non-root) goes the
// ordinary way.
func uringDelete(u []item) error {
	r, err := newRing()
	if err != nil {
		return err
	}
	defer r.close()
	type tree struct {
		parent string
		name   string
		fd     int
		files  []string
		first  int // index of its first result
	}
	var trees []*tree
	defer func() {
		for _, t := range trees {
			if t.fd >= 0 {
				unix.Close(t.fd)
			}
		}
	}()
	for _, it := range u {
		fd, err := unix.Open(filepath.Join(it.dir, it.name), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			if err := unix.Unlink(filepath.Join(it.dir, it.name)); err != nil && !errors.Is(err, unix.ENOENT) {
				return err
			}
			continue
		}
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return err
		}
		names, err := direntNames(fd)
		if err != nil {
			unix.Close(fd)
			return err
		}
		t := &tree{parent: it.dir, name: it.name, fd: fd, files: names, first: len(r.results) + r.pending}
		trees = append(trees, t)
		for _, n := range names {
			if err := r.unlinkat(fd, n, 0); err != nil {
				return err
			}
		}
	}
	if err := r.wait(); err != nil {
		return err
	}
	for _, t := range trees {
		for i, n := range t.files {
			res := r.results[t.first+i]
			if res == 0 || res == -int32(unix.ENOENT) {
				continue
			}
			// EISDIR, EACCES, EPERM: the slow way, for this tree.
			if err := removeDirAt(t.fd, n); err != nil && !errors.Is(err, unix.ENOTDIR) {
				if err := unix.Unlinkat(t.fd, n, 0); err != nil && !errors.Is(err, unix.ENOENT) {
					return fmt.Errorf("deleting %s from the trash: %w", filepath.Join(t.parent, t.name, n), err)
				}
			}
		}
		unix.Close(t.fd)
		t.fd = -1
	}
	r.results = r.results[:0]
	parents := map[string]int{}
	defer func() {
		for _, fd := range parents {
			unix.Close(fd)
		}
	}()
	for _, t := range trees {
		pfd, ok := parents[t.parent]
		if !ok {
			if pfd, err = unix.Open(t.parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
				return err
			}
			parents[t.parent] = pfd
		}
		if err := r.unlinkat(pfd, t.name, atRemoveDir); err != nil {
			return err
		}
	}
	if err := r.wait(); err != nil {
		return err
	}
	for i, t := range trees {
		if res := r.results[i]; res != 0 && res != -int32(unix.ENOENT) {
			return fmt.Errorf("deleting %s from the trash: %w", filepath.Join(t.parent, t.name), unix.Errno(-res))
		}
	}
	return nil
}
