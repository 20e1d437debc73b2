// The sandbox init, in C so that it runs before any Go runtime exists.
//
// sandbox.Run starts a program (nexis-sandbox-init, or nexis itself) with
// argv[0] = "nexis-sandbox-init" in fresh namespaces. This constructor
// runs before main, before the C++ static initialisers of RocksDB and
// before the Go runtime starts: it reads the spec from fd 3, builds the
// sandbox root, pivots into it, becomes the build user and executes the
// builder, which so is PID 1 of the namespace. A Go init paid about 9 ms
// of CPU per build just to start its runtime on this kind of machine.
//
// The spec is a sequence of NUL-terminated fields written by writeSpec
// (sandbox.go); a setup error goes to fd 4 and the exit status is 125.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SPEC_FD 3
#define STATUS_FD 4
#define SETUP_FAILED 125

static void fail(const char *fmt, ...) {
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof msg - 1)
		n = sizeof msg - 1;
	if (n > 0 && write(STATUS_FD, msg, n) < 0)
		_exit(SETUP_FAILED);
	_exit(SETUP_FAILED);
}

static char *xasprintf(const char *fmt, ...) {
	char *s;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		fail("out of memory");
	return s;
}

// The spec: all of fd 3, split at NULs.
static char *spec;
static size_t spec_len, spec_pos;

static void read_spec(void) {
	size_t cap = 1 << 16;
	spec = malloc(cap);
	for (;;) {
		if (spec == NULL)
			fail("out of memory");
		ssize_t n = read(SPEC_FD, spec + spec_len, cap - spec_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("reading spec: %s", strerror(errno));
		if (n == 0)
			break;
		spec_len += n;
		if (spec_len == cap)
			spec = realloc(spec, cap *= 2);
	}
	close(SPEC_FD);
}

static char *field(void) {
	char *s = spec + spec_pos;
	size_t n = strnlen(s, spec_len - spec_pos);
	if (spec_pos + n >= spec_len)
		fail("reading spec: truncated");
	spec_pos += n + 1;
	return s;
}

static long number(void) {
	char *s = field(), *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0')
		fail("reading spec: %s is not a number", s);
	return v;
}

// list reads a count, then that many fields, as a NULL-terminated array.
static char **list(long *count) {
	long n = number();
	char **v = calloc(n + 1, sizeof *v);
	if (v == NULL)
		fail("out of memory");
	for (long i = 0; i < n; i++)
		v[i] = field();
	if (count)
		*count = n;
	return v;
}

// inside is path p (absolute) under the sandbox root.
static char *inside(const char *root, const char *p) {
	return xasprintf("%s/%s", root, p[0] == '/' ? p + 1 : p);
}

static void mkdir_all(const char *p) {
	char *t = xasprintf("%s", p);
	for (char *s = t + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(t, 0755) != 0 && errno != EEXIST)
			fail("creating %s: %s", t, strerror(errno));
		*s = '/';
	}
	if (mkdir(t, 0755) != 0 && errno != EEXIST)
		fail("creating %s: %s", t, strerror(errno));
	free(t);
}

static void mkdir_parent(const char *p) {
	char *t = xasprintf("%s", p);
	char *slash = strrchr(t, '/');
	if (slash != NULL && slash != t) {
		*slash = '\0';
		mkdir_all(t);
	}
	free(t);
}

// write_all writes n bytes to fd (the file p), through short writes.
static void write_all(int fd, const char *p, const char *content, size_t n) {
	while (n > 0) {
		ssize_t w = write(fd, content, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			fail("writing %s: %s", p, strerror(errno));
		content += w;
		n -= w;
	}
}

static void write_file(const char *p, const char *content, size_t n) {
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fail("writing %s: %s", p, strerror(errno));
	write_all(fd, p, content, n);
	close(fd);
}

// copy_host_file copies a host file into the sandbox, if it exists.
static void copy_host_file(const char *src, const char *dst) {
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return;
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		fail("writing %s: %s", dst, strerror(errno));
	char buf[1 << 16];
	for (;;) {
		ssize_t r = read(in, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail("reading %s: %s", src, strerror(errno));
		if (r == 0)
			break;
		write_all(out, dst, buf, r);
	}
	close(in);
	close(out);
}

static void do_mount(const char *src, const char *dst, const char *fstype, unsigned long flags, const char *data, const char *what) {
	if (mount(src, dst, fstype, flags, data) != 0)
		fail("%s: %s", what, strerror(errno));
}

// bind_at mounts source at target inside root, read-only unless writable.
static void bind_at(const char *root, const char *source, const char *target, int writable) {
	struct stat st;
	if (stat(source, &st) != 0)
		fail("bind %s: %s", source, strerror(errno));
	char *dst = inside(root, target);
	if (S_ISDIR(st.st_mode)) {
		mkdir_all(dst);
	} else {
		mkdir_parent(dst);
		int fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0444);
		if (fd < 0)
			fail("creating %s: %s", target, strerror(errno));
		close(fd);
	}
	char *what = xasprintf("binding %s at %s", source, target);
	do_mount(source, dst, NULL, MS_BIND | MS_REC, NULL, what);
	free(what);
	what = xasprintf("remounting %s", target);
	do_mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | (writable ? 0 : MS_RDONLY), NULL, what);
	free(what);
	free(dst);
}

// host_path makes host path p visible at the same place, read-only; a
// host symlink (/bin -> usr/bin on merged-/usr systems) is recreated.
static void host_path(const char *root, const char *p) {
	struct stat st;
	if (lstat(p, &st) != 0) {
		if (errno == ENOENT)
			return;
		fail("sandbox path %s: %s", p, strerror(errno));
	}
	if (!S_ISLNK(st.st_mode)) {
		bind_at(root, p, p, 0);
		return;
	}
	char target[PATH_MAX];
	ssize_t n = readlink(p, target, sizeof target - 1);
	if (n < 0)
		fail("sandbox path %s: %s", p, strerror(errno));
	target[n] = '\0';
	char *dst = inside(root, p);
	mkdir_parent(dst);
	if (symlink(target, dst) != 0)
		fail("linking %s: %s", p, strerror(errno));
	free(dst);
}

// usr_layers makes the trees of layers (host directories, each a
// layer's usr/) the sandbox's /usr, read-only, the first layer winning
// where two hold the same file: one layer is bound, several are the
// lower layers of a read-only overlay. /bin, /sbin, /lib and /lib64 link
// into it (a merged-/usr root), so Debian's binaries run unmodified: the
// ELF interpreter /lib64/ld-linux-x86-64.so.2 and /bin/sh are there.
static void usr_layers(const char *root, char **layers, long n) {
	if (n == 0)
		return;
	if (n == 1) {
		bind_at(root, layers[0], "/usr", 0);
	} else {
		size_t len = strlen("lowerdir=") + 1;
		for (long i = 0; i < n; i++) {
			if (strchr(layers[i], ':') != NULL || strchr(layers[i], ',') != NULL)
				fail("layer %s: an overlay cannot name a path holding ':' or ','", layers[i]);
			len += strlen(layers[i]) + 1;
		}
		char *opts = malloc(len);
		if (opts == NULL)
			fail("out of memory");
		strcpy(opts, "lowerdir=");
		for (long i = 0; i < n; i++) {
			if (i > 0)
				strcat(opts, ":");
			strcat(opts, layers[i]);
		}
		char *dst = inside(root, "/usr");
		mkdir_all(dst);
		do_mount("overlay", dst, "overlay", MS_RDONLY | MS_NOSUID, opts, "mounting the stdenv layers at /usr");
		free(dst);
		free(opts);
	}
	static const char *links[] = {"bin", "sbin", "lib", "lib64"};
	for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
		char *name = xasprintf("/%s", links[i]);
		char *target = xasprintf("usr/%s", links[i]);
		char *p = inside(root, name);
		if (symlink(target, p) != 0)
			fail("linking %s: %s", name, strerror(errno));
		free(p);
		free(name);
		free(target);
	}
}

static void mkdir_mount(const char *root, const char *target, const char *source, const char *fstype, unsigned long flags, const char *data) {
	char *p = inside(root, target);
	mkdir_all(p);
	char *what = xasprintf("mounting %s at %s", fstype, target);
	do_mount(source, p, fstype, flags, data, what);
	free(what);
	free(p);
}

static void link_in(const char *root, const char *target, const char *name) {
	char *p = inside(root, name);
	if (symlink(target, p) != 0)
		fail("linking %s: %s", name, strerror(errno));
	free(p);
}

// make_dev gives the sandbox the few devices builds use.
static void make_dev(const char *root) {
	mkdir_mount(root, "/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=1m");
	static const char *devs[] = {"null", "zero", "full", "random", "urandom", "tty"};
	for (size_t i = 0; i < sizeof devs / sizeof *devs; i++) {
		char *p = xasprintf("/dev/%s", devs[i]);
		struct stat st;
		if (stat(p, &st) == 0)
			bind_at(root, p, p, 1);
		free(p);
	}
	mkdir_mount(root, "/dev/shm", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m");
	// A private devpts instance: test suites that need a terminal get
	// one, and see no other session's.
	mkdir_mount(root, "/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
	link_in(root, "pts/ptmx", "/dev/ptmx");
	link_in(root, "/proc/self/fd", "/dev/fd");
	link_in(root, "/proc/self/fd/0", "/dev/stdin");
	link_in(root, "/proc/self/fd/1", "/dev/stdout");
	link_in(root, "/proc/self/fd/2", "/dev/stderr");
}

// make_etc writes the user database and hosts file builds expect, and
// for fixed-output builds with network, the host's resolver setup.
static void make_etc(const char *root, long uid, long gid, int network) {
	char *etc = inside(root, "/etc");
	mkdir_all(etc);
	char *p = xasprintf("%s/passwd", etc);
	char *c = xasprintf("root:x:0:0:root:/build:/noshell\nnexisbld:x:%ld:%ld:NexisOS build user:/build:/noshell\nnobody:x:65534:65534:nobody:/:/noshell\n", uid, gid);
	write_file(p, c, strlen(c));
	free(p);
	free(c);
	p = xasprintf("%s/group", etc);
	c = xasprintf("root:x:0:\nnexisbld:x:%ld:\nnogroup:x:65534:\n", gid);
	write_file(p, c, strlen(c));
	free(p);
	free(c);
	p = xasprintf("%s/hosts", etc);
	c = "127.0.0.1 localhost\n::1 localhost\n";
	write_file(p, c, strlen(c));
	free(p);
	if (network) {
		static const char *names[] = {"resolv.conf", "nsswitch.conf", "services"};
		for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
			char *src = xasprintf("/etc/%s", names[i]);
			char *dst = xasprintf("%s/%s", etc, names[i]);
			copy_host_file(src, dst);
			free(src);
			free(dst);
		}
		struct stat st;
		if (stat("/etc/ssl", &st) == 0 && S_ISDIR(st.st_mode))
			bind_at(root, "/etc/ssl", "/etc/ssl", 0);
	}
	free(etc);
}

// loopback_up brings up lo in the new network namespace (it starts down).
static void loopback_up(void) {
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail("loopback: %s", strerror(errno));
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0)
		fail("loopback flags: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
		fail("bringing up loopback: %s", strerror(errno));
	close(fd);
}

// look_path finds a builder without a slash in the PATH of env.
static char *look_path(char *file, char **env) {
	if (strchr(file, '/') != NULL)
		return file;
	const char *path = "/usr/bin:/bin";
	for (char **e = env; *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	char *dirs = xasprintf("%s", path), *save = NULL;
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char *p = xasprintf("%s/%s", d, file);
		struct stat st;
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111))
			return p;
		free(p);
	}
	return file;
}

static void run(void) {
	read_spec();
	char *root = field(), *dir = field(), *hostname = field();
	long uid = number(), gid = number(), network = number();
	char **args = list(NULL), **env = list(NULL);
	long nhost, nbinds, nusr;
	char **usr = list(&nusr);
	char **hosts = list(&nhost);
	char **binds = list(&nbinds); // source, target, "1" when writable
	if (args[0] == NULL)
		fail("no builder");
	if (uid == 0 || gid == 0)
		fail("refusing to run a builder as root");
	// Whatever umask nexis was started with, the sandbox's directories
	// and the build's files get the same modes (under 077 the build user
	// could not even enter its inputs' mount points).
	umask(022);

	// Nothing mounted here may propagate back to the host.
	do_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL, "making mounts private");
	do_mount("tmpfs", root, "tmpfs", MS_NOSUID, "mode=0755,size=64m", "mounting the sandbox root");
	usr_layers(root, usr, nusr);
	if (nbinds % 3 != 0)
		fail("reading spec: binds come in threes");
	for (long i = 0; i < nbinds; i += 3)
		bind_at(root, binds[i], binds[i + 1], strcmp(binds[i + 2], "1") == 0);
	make_dev(root);
	mkdir_mount(root, "/proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mkdir_mount(root, "/tmp", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	make_etc(root, uid, gid, network);
	// Last, so that a host path under /tmp or /etc is not hidden by the
	// sandbox's own.
	for (long i = 0; i < nhost; i++)
		host_path(root, hosts[i]);
	if (sethostname(hostname, strlen(hostname)) != 0)
		fail("setting the hostname: %s", strerror(errno));
	if (setdomainname("(none)", 6) != 0)
		fail("setting the domain name: %s", strerror(errno));
	if (!network)
		loopback_up();

	char *old = inside(root, "/.old-root");
	if (mkdir(old, 0700) != 0)
		fail("pivot: %s", strerror(errno));
	if (syscall(SYS_pivot_root, root, old) != 0)
		fail("pivot_root: %s", strerror(errno));
	if (chdir("/") != 0)
		fail("entering the sandbox root: %s", strerror(errno));
	if (umount2("/.old-root", MNT_DETACH) != 0)
		fail("detaching the host root: %s", strerror(errno));
	if (rmdir("/.old-root") != 0)
		fail("removing /.old-root: %s", strerror(errno));
	// The root itself is read-only; only the binds marked writable and
	// /tmp are not.
	do_mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, NULL, "making the sandbox root read-only");
	// Inherited by the builder: setuid programs cannot give it root back.
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		fail("setting no_new_privs: %s", strerror(errno));

	char *builder = look_path(args[0], env);
	if (dir[0] != '\0' && chdir(dir) != 0)
		fail("entering %s: %s", dir, strerror(errno));
	if (setgroups(0, NULL) != 0)
		fail("dropping groups: %s", strerror(errno));
	if (setresgid(gid, gid, gid) != 0)
		fail("becoming group %ld: %s", gid, strerror(errno));
	if (setresuid(uid, uid, uid) != 0)
		fail("becoming user %ld: %s", uid, strerror(errno));
	// Changing credentials cleared the parent-death signal: the builder
	// must still die with nexis.
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
		fail("setting the parent-death signal: %s", strerror(errno));
	if (fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC) != 0)
		fail("status pipe: %s", strerror(errno));
	execve(builder, args, env);
	fail("starting builder %s: %s", args[0], strerror(errno));
}

// 101: before every constructor of default priority (RocksDB's).
__attribute__((constructor(101))) static void nexis_sandbox_init(int argc, char **argv, char **envp) {
	(void)envp;
	if (argc < 1 || strcmp(argv[0], "nexis-sandbox-init") != 0)
		return;
	if (fcntl(SPEC_FD, F_GETFD) < 0 || fcntl(STATUS_FD, F_GETFD) < 0) {
		static const char msg[] = "nexis-sandbox-init: started without a spec; this program is run by nexis, not by hand\n";
		if (write(2, msg, sizeof msg - 1) < 0)
			_exit(SETUP_FAILED);
		_exit(SETUP_FAILED);
	}
	run();
}
