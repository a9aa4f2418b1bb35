/*
 * pycompose-spawner: the only code that runs between the orchestrator and a container.
 *
 * Why C: the orchestrator is a threaded Python process; forking it into a container (or
 * exec'ing Python inside one) is unsafe and slow. This small static binary does the
 * privileged, order-sensitive steps and then execs the container's command.
 *
 * Modes (argv[1]):
 *   run CONFIG      start a container; prints "PID SHIMPID" on success and exits at once.
 *                   A per-container monitor ("shim") stays the container's parent: it writes
 *                   stdout/stderr into a JSON-lines log with rotation and records the exit
 *                   status in a file, then exits after the container does.
 *   exec CONFIG     enter a running container's cgroup and namespaces and run a command
 *                   there with the caller's stdio; exits with the command's status.
 *   exec CONFIG PID the same, with the target pid given here (the shim's healthchecks).
 *   logcopy PATH MAX_SIZE MAX_FILE
 *                   copy stdin into PATH as the shim would (used by tests of rotation).
 *
 * CONFIG is a file of NUL-terminated strings: a key followed by a fixed number of values
 * (see the `parse_config` table). Python writes it (orchestrator/runtime/spawnconf.py).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAXN 512

struct rlim { int res; long long soft, hard; };
struct pair { const char *a, *b, *c; };
/* one mount, in the order given (parents before children): a bind (source, target,
   "ro"|"rw", optional copy-up marker) or a tmpfs (target, options) */
struct mountspec { int tmpfs; const char *source, *target, *mode, *options, *copyup; };

struct config {
    const char *rootfs, *upper, *work, *hostname, *cwd, *exitfile, *logpath;
    const char *lower[MAXN]; int nlower;
    const char *cgroups[16]; int ncgroups;
    const char *ns_mode[5]; /* net ipc uts pid mnt: NULL/"new"/"host"/path */
    const char *env[MAXN + 1]; int nenv;
    const char *argv[MAXN + 1]; int nargv;
    const char *masks[64]; int nmasks;
    const char *ropaths[64]; int nropaths;
    struct mountspec mounts[MAXN]; int nmounts;
    struct pair sysctls[MAXN]; int nsysctls;
    struct rlim rlimits[32]; int nrlimits;
    gid_t groups[64]; int ngroups;
    uid_t uid; gid_t gid;
    uint64_t caps;
    int readonly, init, privileged, target;
    long long log_max_size; int log_max_file;
    /* healthcheck run by the shim: an exec config (target pid given on the command line),
       times in ms; the status file is "STATUS STREAK LASTCODE UNIXNS" */
    const char *healthconf, *healthfile;
    long long h_interval, h_timeout, h_start; int h_retries;
};

static const char *NS_NAMES[5] = {"net", "ipc", "uts", "pid", "mnt"};
static const int NS_FLAGS[5] = {CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWPID, CLONE_NEWNS};

static int errfd = 2; /* where fail() reports: the error pipe inside the container child */

static void fail(const char *fmt, ...) {
    char buf[1024];
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 64, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if (n > (int)sizeof buf - 64) n = sizeof buf - 64;
    if (saved) n += snprintf(buf + n, sizeof buf - n, ": %s", strerror(saved));
    buf[n++] = '\n';
    if (write(errfd, buf, n) < 0) { /* nothing left to report to */ }
    _exit(127);
}

/* ---------- config ---------- */

static char *slurp(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("open config %s", path);
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n == cap) { cap *= 2; buf = realloc(buf, cap); if (!buf) fail("oom"); }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) { if (errno == EINTR) continue; fail("read config"); }
        if (r == 0) break;
        n += r;
    }
    close(fd);
    if (n == 0 || buf[n - 1] != '\0') { errno = 0; fail("config %s: not NUL-terminated", path); }
    *len = n;
    return buf;
}

static void parse_config(const char *path, struct config *c) {
    size_t len;
    char *buf = slurp(path, &len);
    const char *tok[MAXN * 8]; size_t nt = 0;
    for (size_t i = 0; i < len && nt < MAXN * 8; i += strlen(buf + i) + 1) tok[nt++] = buf + i;
    memset(c, 0, sizeof *c);
    c->caps = ~0ULL; c->log_max_file = 1; c->target = -1;
    errno = 0;
#define NEED(k) do { if (i + (k) >= nt) fail("config: %s needs %d values", key, k); } while (0)
#define PUSH(arr, cnt, max, val) do { if ((cnt) >= (max)) fail("config: too many %s", key); arr[(cnt)++] = (val); } while (0)
    for (size_t i = 0; i < nt; i++) {
        const char *key = tok[i];
        if (!strcmp(key, "rootfs")) { NEED(1); c->rootfs = tok[++i]; }
        else if (!strcmp(key, "lower")) { NEED(1); PUSH(c->lower, c->nlower, MAXN, tok[++i]); }
        else if (!strcmp(key, "upper")) { NEED(1); c->upper = tok[++i]; }
        else if (!strcmp(key, "work")) { NEED(1); c->work = tok[++i]; }
        else if (!strcmp(key, "readonly")) { NEED(1); c->readonly = atoi(tok[++i]); }
        else if (!strcmp(key, "hostname")) { NEED(1); c->hostname = tok[++i]; }
        else if (!strcmp(key, "cwd")) { NEED(1); c->cwd = tok[++i]; }
        else if (!strcmp(key, "exitfile")) { NEED(1); c->exitfile = tok[++i]; }
        else if (!strcmp(key, "log")) {
            NEED(3); c->logpath = tok[i + 1]; c->log_max_size = atoll(tok[i + 2]);
            c->log_max_file = atoi(tok[i + 3]); i += 3;
        }
        else if (!strcmp(key, "cgroup")) { NEED(1); PUSH(c->cgroups, c->ncgroups, 16, tok[++i]); }
        else if (!strcmp(key, "ns")) {
            NEED(2); int k = -1;
            for (int j = 0; j < 5; j++) if (!strcmp(tok[i + 1], NS_NAMES[j])) k = j;
            if (k < 0) fail("config: unknown namespace %s", tok[i + 1]);
            c->ns_mode[k] = tok[i + 2]; i += 2;
        }
        else if (!strcmp(key, "env")) { NEED(1); PUSH(c->env, c->nenv, MAXN, tok[++i]); }
        else if (!strcmp(key, "arg")) { NEED(1); PUSH(c->argv, c->nargv, MAXN, tok[++i]); }
        else if (!strcmp(key, "mask")) { NEED(1); PUSH(c->masks, c->nmasks, 64, tok[++i]); }
        else if (!strcmp(key, "ropath")) { NEED(1); PUSH(c->ropaths, c->nropaths, 64, tok[++i]); }
        else if (!strcmp(key, "bind")) {
            NEED(3); struct mountspec m = {0, tok[i + 1], tok[i + 2], tok[i + 3], NULL, NULL};
            i += 3; PUSH(c->mounts, c->nmounts, MAXN, m);
        }
        else if (!strcmp(key, "copyup")) { /* applies to the bind just before it */
            NEED(1);
            if (c->nmounts == 0 || c->mounts[c->nmounts - 1].tmpfs) fail("config: copyup without a bind");
            c->mounts[c->nmounts - 1].copyup = tok[++i];
        }
        else if (!strcmp(key, "tmpfs")) {
            NEED(2); struct mountspec m = {1, NULL, tok[i + 1], NULL, tok[i + 2], NULL};
            i += 2; PUSH(c->mounts, c->nmounts, MAXN, m);
        }
        else if (!strcmp(key, "sysctl")) {
            NEED(2); struct pair p = {tok[i + 1], tok[i + 2], NULL}; i += 2;
            PUSH(c->sysctls, c->nsysctls, MAXN, p);
        }
        else if (!strcmp(key, "rlimit")) {
            NEED(3); struct rlim r = {atoi(tok[i + 1]), atoll(tok[i + 2]), atoll(tok[i + 3])};
            i += 3; PUSH(c->rlimits, c->nrlimits, 32, r);
        }
        else if (!strcmp(key, "uid")) { NEED(1); c->uid = (uid_t)strtoul(tok[++i], NULL, 10); }
        else if (!strcmp(key, "gid")) { NEED(1); c->gid = (gid_t)strtoul(tok[++i], NULL, 10); }
        else if (!strcmp(key, "group")) {
            NEED(1); PUSH(c->groups, c->ngroups, 64, (gid_t)strtoul(tok[++i], NULL, 10));
        }
        else if (!strcmp(key, "caps")) { NEED(1); c->caps = strtoull(tok[++i], NULL, 16); }
        else if (!strcmp(key, "init")) { NEED(1); c->init = atoi(tok[++i]); }
        else if (!strcmp(key, "privileged")) { NEED(1); c->privileged = atoi(tok[++i]); }
        else if (!strcmp(key, "target")) { NEED(1); c->target = atoi(tok[++i]); }
        else if (!strcmp(key, "health")) {
            NEED(5); c->healthconf = tok[i + 1]; c->h_interval = atoll(tok[i + 2]);
            c->h_timeout = atoll(tok[i + 3]); c->h_retries = atoi(tok[i + 4]);
            c->h_start = atoll(tok[i + 5]); i += 5;
        }
        else if (!strcmp(key, "healthfile")) { NEED(1); c->healthfile = tok[++i]; }
        else fail("config: unknown key %s", key);
    }
    if (c->nargv == 0) fail("config: no command");
}

/* ---------- small helpers ---------- */

static void write_file(const char *path, const char *data) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail("open %s", path);
    size_t n = strlen(data);
    if (write(fd, data, n) != (ssize_t)n) fail("write %s to %s", data, path);
    close(fd);
}

static void join_path(char *out, size_t n, const char *root, const char *rel) {
    while (*rel == '/') rel++;
    if (snprintf(out, n, "%s/%s", root, rel) >= (int)n) { errno = ENAMETOOLONG; fail("path %s", rel); }
}

static void join_cgroups(const struct config *c) {
    char path[4096];
    for (int i = 0; i < c->ncgroups; i++) {
        join_path(path, sizeof path, c->cgroups[i], "cgroup.procs");
        write_file(path, "0");
    }
}

static void set_caps(uint64_t caps) {
    int last = 40;
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
    if (f) { if (fscanf(f, "%d", &last) != 1) last = 40; fclose(f); }
    for (int i = 0; i <= last; i++)
        if (!(caps & (1ULL << i)) && prctl(PR_CAPBSET_DROP, i, 0, 0, 0) < 0 && errno != EINVAL)
            fail("drop bounding capability %d", i);
}

static void finish_caps(uint64_t caps) {
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    data[0].effective = data[0].permitted = (uint32_t)caps;
    data[1].effective = data[1].permitted = (uint32_t)(caps >> 32);
    if (syscall(SYS_capset, &hdr, data) < 0) fail("capset");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        fail("clear ambient capabilities");
}

static void set_user(const struct config *c) {
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) fail("keepcaps");
    if (setgroups(c->ngroups, c->groups) < 0) fail("setgroups");
    if (setresgid(c->gid, c->gid, c->gid) < 0) fail("setgid %u", c->gid);
    if (setresuid(c->uid, c->uid, c->uid) < 0) fail("setuid %u", c->uid);
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) fail("keepcaps");
}

static void reset_signals(void) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++) if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
}

static void do_exec(const struct config *c) {
    environ = (char **)c->env;
    execvp(c->argv[0], (char *const *)c->argv);
    fail("exec %s", c->argv[0]);
}

static int status_code(int st) {
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return 255;
}

/* ---------- the container's filesystem ---------- */

static void mnt(const char *src, const char *dst, const char *type, unsigned long fl, const char *data) {
    if (mount(src, dst, type, fl, data) < 0) fail("mount %s on %s", type ? type : src, dst);
}

/* Mount targets are resolved inside the container's root, never on the host. A target
 * such as /data, where an image layer holds `data -> /etc` (or `-> ../../..`), must land
 * on the root's /etc: joining the root and the target as a string and letting the host
 * kernel follow the symlink would mount over the host's /etc instead. So each component
 * is opened with O_NOFOLLOW from the directory before it; a symlink's text is read and
 * walked again from the root (absolute) or from where it was found (relative); `..`
 * never climbs above the root; missing components are created on the way (directories,
 * the last one a file when asked). Mounts then go onto "/proc/self/fd/N" of the final
 * O_PATH descriptor, the object that was resolved, not a path walked again. */

#define MAXDEPTH 256
enum { MK_NONE, MK_DIR, MK_FILE };

static void close_stack(int *stack, int depth) {
    for (int i = 0; i <= depth; i++) close(stack[i]);
}

/* An O_PATH descriptor of `path` inside the directory `rootfd`; -1 with errno. */
static int resolve_in_root(int rootfd, const char *path, int make) {
    static char work[8192], next[8192];
    int stack[MAXDEPTH], depth = 0, links = 0;
    if (snprintf(work, sizeof work, "%s", path) >= (int)sizeof work) { errno = ENAMETOOLONG; return -1; }
    stack[0] = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
    if (stack[0] < 0) return -1;
    char *p = work;
    for (;;) {
        while (*p == '/') p++;
        if (!*p) break;
        char name[256];
        size_t len = strcspn(p, "/");
        if (len >= sizeof name) { errno = ENAMETOOLONG; goto bad; }
        memcpy(name, p, len);
        name[len] = '\0';
        p += len;
        const char *rest = p;
        while (*rest == '/') rest++;
        int last = *rest == '\0';
        if (!strcmp(name, ".")) continue;
        if (!strcmp(name, "..")) { if (depth > 0) close(stack[depth--]); continue; } /* clamped */
        int cur = stack[depth];
        struct stat st;
        if (fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT || make == MK_NONE) goto bad;
            if (last && make == MK_FILE) {
                int fd = openat(cur, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (fd < 0 && errno != EEXIST) goto bad;
                if (fd >= 0) close(fd);
            } else if (mkdirat(cur, name, 0755) < 0 && errno != EEXIST) goto bad;
            if (fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW) < 0) goto bad;
        }
        if (S_ISLNK(st.st_mode)) {
            char target[4096];
            if (++links > 40) { errno = ELOOP; goto bad; }
            ssize_t n = readlinkat(cur, name, target, sizeof target - 1);
            if (n < 0) goto bad;
            target[n] = '\0';
            if (snprintf(next, sizeof next, "%s/%s", target, rest) >= (int)sizeof next) {
                errno = ENAMETOOLONG; goto bad;
            }
            memcpy(work, next, strlen(next) + 1);
            p = work;
            if (target[0] == '/') while (depth > 0) close(stack[depth--]);
            continue;
        }
        if (depth + 1 >= MAXDEPTH) { errno = ENAMETOOLONG; goto bad; }
        int fd = openat(cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC | (last ? 0 : O_DIRECTORY));
        if (fd < 0) goto bad;
        if (fstat(fd, &st) < 0 || S_ISLNK(st.st_mode)) { /* swapped for a symlink meanwhile */
            close(fd); errno = ELOOP; goto bad;
        }
        stack[++depth] = fd;
    }
    for (int i = 0; i < depth; i++) close(stack[i]);
    return stack[depth];
bad:;
    int saved = errno;
    close_stack(stack, depth);
    errno = saved;
    return -1;
}

static int in_root(int rootfd, const char *path, int make) {
    int fd = resolve_in_root(rootfd, path, make);
    if (fd < 0) fail("resolve %s inside the container's root", path);
    return fd;
}

static const char *fd_path(char *buf, size_t n, int fd) {
    snprintf(buf, n, "/proc/self/fd/%d", fd);
    return buf;
}

/* Mount onto what `path` resolves to inside the root. */
static void mnt_in(int rootfd, const char *src, const char *path, int make, const char *type,
                   unsigned long fl, const char *data) {
    char p[64];
    int fd = in_root(rootfd, path, make);
    if (mount(src, fd_path(p, sizeof p, fd), type, fl, data) < 0)
        fail("mount %s on %s", type ? type : src, path);
    close(fd);
}

/* Flags on the mount now at `path` (resolved again: the old descriptor names what lies
   under the new mount, not the mount itself). */
static void remount_in(int rootfd, const char *path, unsigned long fl) {
    mnt_in(rootfd, NULL, path, MK_NONE, NULL, MS_BIND | MS_REMOUNT | fl, NULL);
}

/* ---------- copy-up: the image's files at a mount target into an empty volume ---------- */

static int dir_empty(int dirfd) {
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    DIR *d = fdopendir(fd);
    if (!d) { close(fd); return -1; }
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) { empty = 0; break; }
    closedir(d);
    return empty;
}

static void copy_meta(int dirfd, const char *name, const struct stat *st) {
    /* owner first (chown clears setuid bits), then mode, then times */
    if (fchownat(dirfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0) fail("chown %s", name);
    if (!S_ISLNK(st->st_mode) && fchmodat(dirfd, name, st->st_mode & 07777, 0) < 0) fail("chmod %s", name);
    struct timespec ts[2] = {st->st_atim, st->st_mtim};
    if (utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0) fail("times %s", name);
}

static void copy_file(int from, int to, const char *name) {
    int in = openat(from, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0) fail("copy-up open %s", name);
    int out = openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) fail("copy-up create %s", name);
    static char buf[65536];
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0) { if (errno == EINTR) continue; fail("copy-up read %s", name); }
        if (r == 0) break;
        for (ssize_t w = 0; w < r;) {
            ssize_t n = write(out, buf + w, r - w);
            if (n < 0) { if (errno == EINTR) continue; fail("copy-up write %s", name); }
            w += n;
        }
    }
    close(in);
    close(out);
}

/* Every entry of directory `from` (the image, through the overlay) into `to` (the volume),
   with owners, modes and times; symlinks copied as symlinks, never followed. */
static void copy_tree(int from, int to, int level) {
    if (level > 128) { errno = ELOOP; fail("copy-up: too deep"); }
    int fd = openat(from, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail("copy-up open directory");
    DIR *d = fdopendir(fd);
    if (!d) fail("copy-up read directory");
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (!strcmp(name, ".") || !strcmp(name, "..")) continue;
        struct stat st;
        if (fstatat(from, name, &st, AT_SYMLINK_NOFOLLOW) < 0) fail("copy-up stat %s", name);
        if (S_ISDIR(st.st_mode)) {
            if (mkdirat(to, name, 0700) < 0) fail("copy-up mkdir %s", name);
            int a = openat(from, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int b = openat(to, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (a < 0 || b < 0) fail("copy-up open %s", name);
            copy_tree(a, b, level + 1);
            close(a);
            close(b);
        } else if (S_ISREG(st.st_mode)) {
            copy_file(from, to, name);
        } else if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t n = readlinkat(from, name, target, sizeof target - 1);
            if (n < 0) fail("copy-up readlink %s", name);
            target[n] = '\0';
            if (symlinkat(target, to, name) < 0) fail("copy-up symlink %s", name);
        } else if (mknodat(to, name, st.st_mode, st.st_rdev) < 0) {
            fail("copy-up mknod %s", name);
        }
        copy_meta(to, name, &st);
    }
    closedir(d);
}

/* Docker's copy-up: once per container (the marker), and only into an empty volume; the
   volume's root takes the owner and mode of the image's directory. */
static void copy_up(int rootfd, const struct mountspec *m) {
    if (access(m->copyup, F_OK) == 0) return;
    int image = resolve_in_root(rootfd, m->target, MK_NONE);
    if (image < 0 && errno != ENOENT && errno != ENOTDIR) fail("copy-up: resolve %s", m->target);
    /* locked: replicas starting together with one new volume copy it once */
    int volume = open(m->source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (volume < 0) fail("copy-up: open %s", m->source);
    if (flock(volume, LOCK_EX) < 0) fail("copy-up: lock %s", m->source);
    struct stat st;
    if (image >= 0 && fstat(image, &st) == 0 && S_ISDIR(st.st_mode) && dir_empty(volume) == 1) {
        copy_tree(image, volume, 0);
        char p[64];
        fd_path(p, sizeof p, volume);
        if (chown(p, st.st_uid, st.st_gid) < 0 || chmod(p, st.st_mode & 07777) < 0)
            fail("copy-up: owner and mode of %s", m->source);
    }
    if (image >= 0) close(image);
    close(volume);
    int mk = open(m->copyup, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (mk >= 0) close(mk);
}

static void setup_dev(int rootfd) {
    mnt_in(rootfd, "tmpfs", "dev", MK_DIR, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
    int dev = in_root(rootfd, "dev", MK_NONE); /* the fresh tmpfs: nothing of the image in it */
    static const struct { const char *name; int major, minor; } nodes[] = {
        {"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9},
        {"tty", 5, 0},
    };
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        if (mknodat(dev, nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor)) < 0)
            fail("mknod /dev/%s", nodes[i].name);
        if (fchmodat(dev, nodes[i].name, 0666, 0) < 0) fail("chmod /dev/%s", nodes[i].name);
    }
    static const char *links[][2] = {
        {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
        {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"}, {"/proc/kcore", "core"},
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        if (symlinkat(links[i][0], dev, links[i][1]) < 0) fail("symlink /dev/%s", links[i][1]);
    if (mkdirat(dev, "pts", 0755) < 0 || mkdirat(dev, "shm", 01777) < 0 || mkdirat(dev, "mqueue", 0755) < 0)
        fail("mkdir in /dev");
    if (fchmodat(dev, "shm", 01777, 0) < 0) fail("chmod /dev/shm");
    close(dev);
    mnt_in(rootfd, "devpts", "dev/pts", MK_NONE, "devpts", MS_NOSUID | MS_NOEXEC,
           "newinstance,ptmxmode=0666,mode=0620,gid=5");
    mnt_in(rootfd, "shm", "dev/shm", MK_NONE, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
    mnt_in(rootfd, "mqueue", "dev/mqueue", MK_NONE, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

static void setup_rootfs(const struct config *c) {
    char opts[16384], p[64];
    const char *root = c->rootfs;
    mnt(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    if (c->nlower > 0) {
        int n = snprintf(opts, sizeof opts, "lowerdir=");
        for (int i = 0; i < c->nlower && n < (int)sizeof opts; i++)
            n += snprintf(opts + n, sizeof opts - n, "%s%s", i ? ":" : "", c->lower[i]);
        if (c->upper)
            n += snprintf(opts + n, sizeof opts - n, ",upperdir=%s,workdir=%s", c->upper, c->work);
        if (n >= (int)sizeof opts) { errno = E2BIG; fail("overlay options"); }
        mnt("pycompose-overlay", root, "overlay", 0, opts);
    } else {
        mnt(root, root, NULL, MS_BIND | MS_REC, NULL);
    }
    int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) fail("open %s", root);
    mnt_in(rootfd, "proc", "proc", MK_DIR, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    setup_dev(rootfd);
    unsigned long ro = c->privileged ? 0 : MS_RDONLY;
    int sys = in_root(rootfd, "sys", MK_DIR);
    if (mount("sysfs", fd_path(p, sizeof p, sys), "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | ro, NULL) < 0) {
        /* sysfs of a network namespace we do not own: bind the host's, read-only */
        mnt("/sys", p, NULL, MS_BIND | MS_REC, NULL);
        remount_in(rootfd, "sys", MS_REC | ro);
    }
    close(sys);
    for (int i = 0; i < c->nmounts; i++) {
        const struct mountspec *m = &c->mounts[i];
        if (m->tmpfs) {
            mnt_in(rootfd, "tmpfs", m->target, MK_DIR, "tmpfs", MS_NOSUID | MS_NODEV, m->options);
            continue;
        }
        struct stat st;
        if (stat(m->source, &st) < 0) fail("bind source %s", m->source);
        if (m->copyup && S_ISDIR(st.st_mode)) copy_up(rootfd, m);
        mnt_in(rootfd, m->source, m->target, S_ISDIR(st.st_mode) ? MK_DIR : MK_FILE, NULL, MS_BIND | MS_REC, NULL);
        if (!strcmp(m->mode, "ro")) remount_in(rootfd, m->target, MS_RDONLY);
    }
    for (int i = 0; i < c->nsysctls; i++) {
        char rel[4096];
        snprintf(rel, sizeof rel, "proc/sys/%s", c->sysctls[i].a);
        int fd = in_root(rootfd, rel, MK_NONE);
        write_file(fd_path(p, sizeof p, fd), c->sysctls[i].b);
        close(fd);
    }
    if (c->cwd) close(in_root(rootfd, c->cwd, MK_DIR));
    for (int i = 0; i < c->nmasks; i++) {
        struct stat st;
        int fd = resolve_in_root(rootfd, c->masks[i], MK_NONE);
        if (fd < 0) continue;
        if (fstat(fd, &st) < 0) fail("stat %s", c->masks[i]);
        close(fd);
        if (S_ISDIR(st.st_mode)) mnt_in(rootfd, "tmpfs", c->masks[i], MK_NONE, "tmpfs", MS_RDONLY, "size=0");
        else {
            int null = in_root(rootfd, "dev/null", MK_NONE);
            mnt_in(rootfd, fd_path(p, sizeof p, null), c->masks[i], MK_NONE, NULL, MS_BIND, NULL);
            close(null);
        }
    }
    for (int i = 0; i < c->nropaths; i++) {
        int fd = resolve_in_root(rootfd, c->ropaths[i], MK_NONE);
        if (fd < 0) continue;
        mnt_in(rootfd, fd_path(p, sizeof p, fd), c->ropaths[i], MK_NONE, NULL, MS_BIND | MS_REC, NULL);
        close(fd);
        remount_in(rootfd, c->ropaths[i], MS_RDONLY | MS_REC | MS_NOSUID | MS_NODEV | MS_NOEXEC);
    }
    close(rootfd);
    if (chdir(root) < 0) fail("chdir %s", root);
    if (syscall(SYS_pivot_root, ".", ".") < 0) fail("pivot_root");
    if (umount2(".", MNT_DETACH) < 0) fail("detach old root");
    if (chdir("/") < 0) fail("chdir /");
    if (c->readonly) mnt(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
}

static void loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) fail("socket");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) fail("get lo flags");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail("bring lo up");
    close(s);
}

static int open_ns(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("open namespace %s", path);
    return fd;
}

static int is_path(const char *mode) { return mode && mode[0] == '/'; }

/* Runs as the container's first process, in its new namespaces; never returns. */
static void container_main(const struct config *c, int out, int err, int devnull) {
    prctl(PR_SET_NAME, "pycompose-init", 0, 0, 0); /* until exec; stays with init: true */
    reset_signals();
    if (dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) fail("dup2");
    join_cgroups(c);
    /* a cgroup namespace rooted at its own cgroup: /proc/self/cgroup shows "/" */
    if (unshare(CLONE_NEWCGROUP) < 0) fail("unshare cgroup namespace");
    for (int k = 0; k < 5; k++) {
        if (k == 3 || !is_path(c->ns_mode[k])) continue; /* pid was joined by the shim */
        int fd = open_ns(c->ns_mode[k]);
        if (setns(fd, NS_FLAGS[k]) < 0) fail("join %s namespace", NS_NAMES[k]);
        close(fd);
    }
    if (c->hostname && (!c->ns_mode[2] || !strcmp(c->ns_mode[2], "new")))
        if (sethostname(c->hostname, strlen(c->hostname)) < 0) fail("sethostname");
    if (!c->ns_mode[0] || !strcmp(c->ns_mode[0], "new")) loopback_up();
    setup_rootfs(c);
    for (int i = 0; i < c->nrlimits; i++) {
        struct rlimit r = {
            c->rlimits[i].soft < 0 ? RLIM_INFINITY : (rlim_t)c->rlimits[i].soft,
            c->rlimits[i].hard < 0 ? RLIM_INFINITY : (rlim_t)c->rlimits[i].hard,
        };
        if (setrlimit(c->rlimits[i].res, &r) < 0) fail("setrlimit %d", c->rlimits[i].res);
    }
    set_caps(c->caps);
    set_user(c);
    finish_caps(c->caps);
    if (c->cwd && chdir(c->cwd) < 0) fail("chdir %s", c->cwd);
    if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) fail("close_range");
    if (!c->init) do_exec(c);
    /* init: true — stay as a tiny reaper (this code, no exec) and forward signals */
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    pid_t child = fork();
    if (child < 0) fail("fork");
    if (child == 0) { setsid(); reset_signals(); do_exec(c); }
    close(errfd);
    errfd = -1;
    for (;;) {
        int sig;
        if (sigwait(&all, &sig) != 0) continue;
        if (sig != SIGCHLD) { kill(-child, sig); kill(child, sig); continue; }
        int st;
        pid_t w;
        while ((w = waitpid(-1, &st, WNOHANG)) > 0)
            if (w == child) _exit(status_code(st));
    }
}

/* ---------- the log writer ---------- */

struct logger { const char *path; int fd; long long size, max_size; int max_file; };

static int log_open(struct logger *lg) {
    lg->fd = open(lg->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (lg->fd < 0) return -1;
    struct stat st;
    lg->size = fstat(lg->fd, &st) == 0 ? st.st_size : 0;
    return 0;
}

static void log_rotate(struct logger *lg) {
    char from[4096], to[4096];
    close(lg->fd);
    if (lg->max_file <= 1) {
        truncate(lg->path, 0);
    } else {
        for (int i = lg->max_file - 1; i >= 1; i--) {
            if (i == 1) snprintf(from, sizeof from, "%s", lg->path);
            else snprintf(from, sizeof from, "%s.%d", lg->path, i - 1);
            snprintf(to, sizeof to, "%s.%d", lg->path, i);
            rename(from, to);
        }
    }
    log_open(lg);
}

static void log_line(struct logger *lg, const char *stream, const char *data, size_t n) {
    static char out[65536 * 6 + 256];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t o = (size_t)snprintf(out, sizeof out, "{\"log\":\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)data[i];
        if (ch == '"' || ch == '\\') { out[o++] = '\\'; out[o++] = (char)ch; }
        else if (ch == '\n') { out[o++] = '\\'; out[o++] = 'n'; }
        else if (ch == '\r') { out[o++] = '\\'; out[o++] = 'r'; }
        else if (ch == '\t') { out[o++] = '\\'; out[o++] = 't'; }
        else if (ch < 0x20 || ch == 0x7f) o += (size_t)snprintf(out + o, 8, "\\u%04x", ch);
        else out[o++] = (char)ch;
    }
    o += (size_t)snprintf(out + o, sizeof out - o,
                          "\",\"stream\":\"%s\",\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ\"}\n",
                          stream, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                          tm.tm_min, tm.tm_sec, ts.tv_nsec);
    if (lg->fd < 0) return;
    if (lg->max_size > 0 && lg->size > 0 && lg->size + (long long)o > lg->max_size) log_rotate(lg);
    if (lg->fd < 0) return;
    ssize_t w = write(lg->fd, out, o);
    if (w > 0) lg->size += w;
}

#define LINE_MAX_BYTES 16384 /* like docker: longer lines are split into partial records */

struct stream { int fd; const char *name; char buf[LINE_MAX_BYTES]; size_t len; };

/* Reads what is available; logs complete lines. Returns 0 at EOF. */
static int stream_pump(struct stream *s, struct logger *lg) {
    ssize_t r = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
    if (r < 0) return errno == EINTR || errno == EAGAIN ? 1 : 0;
    if (r == 0) {
        if (s->len) log_line(lg, s->name, s->buf, s->len);
        s->len = 0;
        return 0;
    }
    s->len += (size_t)r;
    size_t start = 0;
    for (size_t i = 0; i < s->len; i++)
        if (s->buf[i] == '\n') { log_line(lg, s->name, s->buf + start, i + 1 - start); start = i + 1; }
    if (start == 0 && s->len == sizeof s->buf) { log_line(lg, s->name, s->buf, s->len); start = s->len; }
    memmove(s->buf, s->buf + start, s->len - start);
    s->len -= start;
    return 1;
}

static int logcopy_main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: logcopy PATH MAX_SIZE MAX_FILE\n"); return 2; }
    struct logger lg = {argv[2], -1, 0, atoll(argv[3]), atoi(argv[4])};
    if (log_open(&lg) < 0) { perror("open log"); return 1; }
    static struct stream s;
    s.fd = 0; s.name = "stdout";
    while (stream_pump(&s, &lg)) {}
    return 0;
}

/* ---------- run: spawner → shim → container ---------- */

static void write_exit(const char *path, int st) {
    char tmp[4096], buf[128];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    int n = snprintf(buf, sizeof buf, "%d %d %lld\n", code, sig,
                     (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (write(fd, buf, n) == n && fsync(fd) == 0) rename(tmp, path);
    close(fd);
}

/* ---------- healthchecks, run by the shim (it outlives the CLI) ---------- */

struct health { pid_t pid; long long next, deadline, started; int streak, last; const char *status; };

static long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void write_health(const char *path, const struct health *h) {
    char tmp[4096], buf[160];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int n = snprintf(buf, sizeof buf, "%s %d %d %lld\n", h->status, h->streak, h->last,
                     (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (write(fd, buf, n) == n) rename(tmp, path);
    close(fd);
}

/* One probe: this same binary in exec mode, joining the container (stdio: /dev/null). */
static pid_t health_launch(const struct config *c, pid_t target) {
    char pidstr[32];
    snprintf(pidstr, sizeof pidstr, "%d", (int)target);
    pid_t p = fork();
    if (p == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execl("/proc/self/exe", "pycompose-health", "exec", c->healthconf, pidstr, (char *)NULL);
        _exit(126);
    }
    return p;
}

/* Docker's rules: a pass makes it healthy; a failure counts only after the start period
   (or once it has passed a probe); `retries` failures in a row make it unhealthy. */
static void health_result(const struct config *c, struct health *h, int st, long long now) {
    h->last = status_code(st);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) { h->streak = 0; h->status = "healthy"; }
    else if (now - h->started < c->h_start && !strcmp(h->status, "starting")) { /* grace */ }
    else if (++h->streak >= (c->h_retries > 0 ? c->h_retries : 3)) h->status = "unhealthy";
    if (c->healthfile) write_health(c->healthfile, h);
}

static void report(int fd, const char *msg) {
    size_t n = strlen(msg);
    if (write(fd, msg, n) < 0) { /* the spawner is gone */ }
}

static void shim_main(struct config *c, int rep) {
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) { report(rep, "ERR open /dev/null\n"); _exit(1); }
    dup2(devnull, 0); dup2(devnull, 1); dup2(devnull, 2); /* never hold the caller's pipes */
    int outp[2], errp[2], errpipe[2];
    if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 || pipe2(errpipe, O_CLOEXEC) < 0) {
        report(rep, "ERR pipe\n"); _exit(1);
    }
    struct logger lg = {c->logpath, -1, 0, c->log_max_size, c->log_max_file};
    if (c->logpath && log_open(&lg) < 0) { report(rep, "ERR open log\n"); _exit(1); }
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    unsigned long flags = SIGCHLD;
    for (int k = 0; k < 5; k++) {
        const char *m = c->ns_mode[k];
        if (!m || !strcmp(m, "new")) flags |= NS_FLAGS[k];
    }
    if (is_path(c->ns_mode[3])) {
        int fd = open(c->ns_mode[3], O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWPID) < 0) { report(rep, "ERR join pid namespace\n"); _exit(1); }
        close(fd);
    }
    pid_t child = (pid_t)syscall(SYS_clone, flags, 0, 0, 0, 0);
    if (child < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "ERR clone: %s\n", strerror(errno));
        report(rep, msg); _exit(1);
    }
    if (child == 0) {
        close(rep); close(outp[0]); close(errp[0]); close(errpipe[0]); close(sfd);
        errfd = errpipe[1];
        container_main(c, outp[1], errp[1], devnull);
    }
    close(outp[1]); close(errp[1]); close(errpipe[1]);
    char ebuf[1100];
    size_t en = 0;
    ssize_t r;
    while ((r = read(errpipe[0], ebuf + en, sizeof ebuf - 1 - en)) != 0) {
        if (r < 0) { if (errno == EINTR) continue; break; }
        en += (size_t)r;
        if (en >= sizeof ebuf - 1) break;
    }
    close(errpipe[0]);
    if (en > 0) {
        ebuf[en] = '\0';
        char msg[1200];
        snprintf(msg, sizeof msg, "ERR %s", ebuf);
        report(rep, msg);
        int st;
        waitpid(child, &st, 0);
        _exit(1);
    }
    struct health hh = {-1, 0, 0, 0, 0, -1, "starting"};
    hh.started = mono_ms();
    hh.next = hh.started + c->h_interval;
    if (c->healthconf && c->healthfile) write_health(c->healthfile, &hh);
    char ok[64];
    snprintf(ok, sizeof ok, "OK %d %d\n", (int)child, (int)getpid());
    report(rep, ok);
    close(rep);
    static struct stream so, se;
    so.fd = outp[0]; so.name = "stdout";
    se.fd = errp[0]; se.name = "stderr";
    int open_streams = 2, exited = 0, st = 0;
    long deadline_ms = -1;
    while (open_streams > 0 || !exited) {
        struct pollfd p[3] = {{so.fd, POLLIN, 0}, {se.fd, POLLIN, 0}, {sfd, POLLIN, 0}};
        int timeout = exited ? 100 : -1;
        if (!exited && c->healthconf) {
            long long wait = (hh.pid > 0 ? hh.deadline : hh.next) - mono_ms();
            timeout = wait < 0 ? 0 : wait > 3600000 ? 3600000 : (int)wait;
        }
        int n = poll(p, 3, timeout);
        if (n < 0) { if (errno == EINTR) continue; break; }
        if (n == 0 && exited && ++deadline_ms > 20) break; /* output held open by a stray: stop */
        for (int i = 0; i < 2; i++) {
            struct stream *s = i ? &se : &so;
            if (s->fd >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR)) && !stream_pump(s, &lg)) {
                close(s->fd); s->fd = -1; open_streams--;
            }
        }
        if (p[2].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) > 0) {}
            pid_t w;
            int ws;
            while ((w = waitpid(-1, &ws, WNOHANG)) > 0) {
                if (w == child) { exited = 1; st = ws; }
                else if (w == hh.pid) {
                    long long now = mono_ms();
                    hh.pid = -1;
                    hh.next = now + c->h_interval;
                    if (!exited) health_result(c, &hh, ws, now);
                }
            }
        }
        if (!exited && c->healthconf) {
            long long now = mono_ms();
            if (hh.pid > 0 && now >= hh.deadline) {
                kill(hh.pid, SIGKILL); /* a timeout is a failure: reaped as killed above */
                hh.deadline = now + 3600000;
            } else if (hh.pid <= 0 && now >= hh.next) {
                hh.pid = health_launch(c, child);
                hh.deadline = now + c->h_timeout;
                if (hh.pid < 0) hh.next = now + c->h_interval; /* fork failed: next time */
            }
        }
    }
    if (hh.pid > 0) { kill(hh.pid, SIGKILL); waitpid(hh.pid, NULL, 0); }
    if (c->exitfile) write_exit(c->exitfile, st);
    _exit(0);
}

static int run_main(const char *cfgpath) {
    static struct config c;
    parse_config(cfgpath, &c);
    int rep[2];
    if (pipe2(rep, O_CLOEXEC) < 0) fail("pipe");
    pid_t mid = fork();
    if (mid < 0) fail("fork");
    if (mid == 0) {
        close(rep[0]);
        setsid();
        pid_t shim = fork();
        if (shim < 0) { report(rep[1], "ERR fork shim\n"); _exit(1); }
        if (shim == 0) {
            prctl(PR_SET_NAME, "pycompose-shim", 0, 0, 0);
            shim_main(&c, rep[1]);
        }
        _exit(0);
    }
    close(rep[1]);
    int st;
    waitpid(mid, &st, 0);
    char buf[1300];
    size_t n = 0;
    ssize_t r;
    while ((r = read(rep[0], buf + n, sizeof buf - 1 - n)) != 0) {
        if (r < 0) { if (errno == EINTR) continue; break; }
        n += (size_t)r;
        if (n >= sizeof buf - 1) break;
    }
    buf[n] = '\0';
    if (!strncmp(buf, "OK ", 3)) { fputs(buf + 3, stdout); return 0; }
    fputs(n > 4 ? buf + 4 : "shim died before reporting\n", stderr);
    return 1;
}

/* ---------- exec: join a running container ---------- */

static int exec_main(const char *cfgpath, const char *target) {
    static struct config c;
    parse_config(cfgpath, &c);
    if (target) c.target = atoi(target);
    if (c.target <= 0) fail("exec: no target pid");
    int fds[5];
    char p[64];
    for (int k = 0; k < 5; k++) {
        snprintf(p, sizeof p, "/proc/%d/ns/%s", c.target, NS_NAMES[k]);
        fds[k] = open_ns(p);
    }
    snprintf(p, sizeof p, "/proc/%d/ns/cgroup", c.target);
    int cgfd = open_ns(p);
    join_cgroups(&c);
    if (setns(cgfd, CLONE_NEWCGROUP) < 0) fail("join cgroup namespace");
    for (int k = 0; k < 5; k++) /* mnt last: the /proc paths above live in the host's */
        if (setns(fds[k], NS_FLAGS[k]) < 0) fail("join %s namespace", NS_NAMES[k]);
    sigset_t fwd;
    sigemptyset(&fwd);
    sigaddset(&fwd, SIGTERM); sigaddset(&fwd, SIGINT); sigaddset(&fwd, SIGHUP);
    sigaddset(&fwd, SIGQUIT); sigaddset(&fwd, SIGCHLD);
    sigprocmask(SIG_BLOCK, &fwd, NULL);
    pid_t child = fork();
    if (child < 0) fail("fork");
    if (child == 0) {
        reset_signals();
        if (chdir("/") < 0) fail("chdir /");
        set_caps(c.caps);
        set_user(&c);
        finish_caps(c.caps);
        /* after the credential change, which clears it: die with the spawner */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) fail("pdeathsig");
        if (getppid() == 1) _exit(137);
        if (c.cwd && chdir(c.cwd) < 0) fail("chdir %s", c.cwd);
        if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) fail("close_range");
        environ = (char **)c.env;
        execvp(c.argv[0], (char *const *)c.argv);
        int e = errno;
        fprintf(stderr, "exec %s: %s\n", c.argv[0], strerror(e));
        _exit(e == ENOENT ? 127 : 126);
    }
    for (;;) {
        int sig;
        if (sigwait(&fwd, &sig) != 0) continue;
        if (sig != SIGCHLD) { kill(child, sig); continue; }
        int st;
        if (waitpid(child, &st, WNOHANG) == child) return status_code(st);
    }
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "run")) return run_main(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "exec")) return exec_main(argv[2], argc >= 4 ? argv[3] : NULL);
    if (argc >= 2 && !strcmp(argv[1], "logcopy")) return logcopy_main(argc, argv);
    fprintf(stderr, "usage: %s run CONFIG | exec CONFIG | logcopy PATH MAX_SIZE MAX_FILE\n", argv[0]);
    return 2;
}
