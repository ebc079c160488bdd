// The only C in hull: join namespaces by path before the Go runtime starts threads.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(const char *what, const char *arg) {
	// The parent reads stderr of a failed init: say what failed.
	fprintf(stderr, "hull-runtime init: %s %s: %s\n", what, arg, strerror(errno));
	_exit(1);
}

void hull_nsenter(void) {
	const char *spec = getenv("_HULL_NSENTER");
	const char *unsh = getenv("_HULL_UNSHARE");
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
	if (unsh != NULL && *unsh != '\0') {
		int flags = atoi(unsh);
		if (flags != 0 && unshare(flags) < 0)
			die("unshare", unsh);
		unsetenv("_HULL_UNSHARE");
	}
}
