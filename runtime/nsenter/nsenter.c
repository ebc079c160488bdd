// The only C in hull: join namespaces by path before the Go runtime starts threads.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void die(const char *what, const char *arg) {
	// The parent reads stderr of a failed init: say what failed.
	fprintf(stderr, "hull-runtime init: %s %s: %s\n", what, arg, strerror(errno));
	_exit(1);
}

// join_cgroups writes "0" into each cgroup v1 "tasks" fd in list (comma
// separated), moving this still single-threaded process into the container's
// cgroups without the global lock a pid written by another process takes.
// First of all: before a user namespace or a fork.
static void join_cgroups(const char *list) {
	const char *p = list;
	while (*p != '\0') {
		char *end;
		errno = 0;
		long fd = strtol(p, &end, 10);
		if (end == p || fd < 0 || (*end != ',' && *end != '\0')) {
			errno = EINVAL;
			die("join cgroups: malformed fd list", list);
		}
		if (write((int)fd, "0", 1) != 1) {
			char link[64], path[512];
			snprintf(link, sizeof(link), "/proc/self/fd/%ld", fd);
			int saved = errno;
			ssize_t n = readlink(link, path, sizeof(path) - 1);
			path[n > 0 ? n : 0] = '\0';
			errno = saved;
			die("join cgroup", n > 0 ? path : link);
		}
		close((int)fd);
		p = *end == ',' ? end + 1 : end;
	}
}

void hull_nsenter(void) {
	const char *cgtasks = getenv("_HULL_CGROUP_TASKS");
	if (cgtasks != NULL) {
		join_cgroups(cgtasks);
		unsetenv("_HULL_CGROUP_TASKS");
	}
	const char *spec = getenv("_HULL_NSENTER");
	const char *unsh = getenv("_HULL_UNSHARE");
	const char *pidfd = getenv("_HULL_FORK_PIDFD");
	if (spec != NULL && *spec != '\0') {
		char *list = strdup(spec);
		if (list == NULL)
			die("nsenter", "strdup");
		for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok != NULL;
		     tok = strtok_r(NULL, ",", &save)) {
			char *path = strchr(tok, ':');
			if (path == NULL) {
				errno = EINVAL;
				die("nsenter: malformed entry", tok);
			}
			path++;
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				die("open namespace", path);
			if (setns(fd, 0) < 0)
				die("setns", path);
			close(fd);
		}
		free(list);
		unsetenv("_HULL_NSENTER");
	}
	const char *usync = getenv("_HULL_USERNS_SYNC");
	if (usync != NULL && *usync != '\0') {
		// Rootless: a new user namespace whose maps the parent writes with
		// newuidmap/newgidmap. unshare(2) keeps our capabilities in it, which an
		// execve as an unmapped uid would not.
		int fd = atoi(usync);
		unsetenv("_HULL_USERNS_SYNC");
		char c = 'U';
		if (unshare(CLONE_NEWUSER) < 0)
			die("unshare", "user namespace");
		if (write(fd, &c, 1) != 1)
			die("userns handshake", "write");
		if (read(fd, &c, 1) != 1 || c != 'M')
			die("userns handshake", "parent did not write the id maps");
		if (setresgid(0, 0, 0) < 0)
			die("setresgid", "0");
		if (setresuid(0, 0, 0) < 0)
			die("setresuid", "0");
		close(fd);
	}
	if (unsh != NULL && *unsh != '\0') {
		int flags = atoi(unsh);
		if (flags != 0 && unshare(flags) < 0)
			die("unshare", unsh);
		unsetenv("_HULL_UNSHARE");
	}
	const char *timens = getenv("_HULL_TIMENS_OFFSETS");
	if (timens != NULL) {
		// A time namespace applies to children, and its offsets must be set
		// before any process enters it: unshare, write, then fork below.
		if (unshare(CLONE_NEWTIME) < 0)
			die("unshare", "time namespace");
		if (*timens != '\0') {
			int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
			if (fd < 0)
				die("open", "/proc/self/timens_offsets");
			size_t n = strlen(timens);
			if (write(fd, timens, n) != (ssize_t)n)
				die("linux.timeOffsets: write", timens);
			close(fd);
		}
		unsetenv("_HULL_TIMENS_OFFSETS");
	}
	if (pidfd != NULL && *pidfd != '\0') {
		// A joined pid namespace applies to children only: fork once. With
		// CLONE_PARENT the child belongs to our parent (hull-runtime exec),
		// which can wait for it; we report its pid and leave.
		int out = atoi(pidfd);
		unsetenv("_HULL_FORK_PIDFD");
		pid_t child = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
		if (child < 0)
			die("fork into the container's pid namespace", "");
		if (child > 0) {
			char buf[32];
			int n = snprintf(buf, sizeof(buf), "%d\n", (int)child);
			if (write(out, buf, (size_t)n) != n)
				_exit(1);
			_exit(0);
		}
		close(out);
	}
}
