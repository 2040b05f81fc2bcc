/*
 * vmdb_paths.c — the per-user runtime folder shared by vireod and its clients.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmdb_net.h"

int vmdb_runtime_dir(char *buf, size_t len)
{
	const char *x = getenv("XDG_RUNTIME_DIR");
	int n;
	if (x && x[0] == '/')
		n = snprintf(buf, len, "%s/vireo", x);
	else
		n = snprintf(buf, len, "/tmp/vireo-%u", (unsigned)getuid());
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	struct stat st;
	if (lstat(buf, &st))
		return -errno;
	/* /tmp is shared: a folder someone else made (or a link) is not ours. */
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077))
		return -EPERM;
	return 0;
}

int vmdb_default_socket(char *buf, size_t len)
{
	char dir[512];
	int rc = vmdb_runtime_dir(dir, sizeof(dir));
	if (rc)
		return rc;
	int n = snprintf(buf, len, "%s/vmdb.sock", dir);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
