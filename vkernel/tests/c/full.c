/* `full FD`: write(2) and writev(2) to FD (which the test points at
 * /dev/full) and report what they returned on the other of fds 1 and 2:
 * Linux gives ENOSPC, and so must the guest when the host's console write
 * fails with it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int fd = argc > 1 ? atoi(argv[1]) : 1;
	int report = fd == 1 ? 2 : 1;
	char b[160];
	errno = 0;
	ssize_t r = write(fd, "hello\n", 6);
	int n = snprintf(b, sizeof b, "write: %zd %s\n", r, r < 0 ? strerror(errno) : "-");
	write(report, b, n);
	struct iovec iov[2] = {{"ab", 2}, {"cd\n", 3}};
	errno = 0;
	r = writev(fd, iov, 2);
	n = snprintf(b, sizeof b, "writev: %zd %s\n", r, r < 0 ? strerror(errno) : "-");
	write(report, b, n);
	return 0;
}
