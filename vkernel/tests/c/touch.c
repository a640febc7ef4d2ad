/* `touch MIB`: maps MIB MiB of anonymous memory, writes every page, says
 * "touched" and waits for a line on stdin; unmaps it, says "unmapped" and
 * waits for another line; then exits. The test reads the host's memory
 * use at each wait: pages a process gave back must go back to the host. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static void wait_line(const char *say)
{
	char c;
	printf("%s\n", say);
	fflush(stdout);
	while (read(0, &c, 1) == 1 && c != '\n')
		;
}

int main(int argc, char **argv)
{
	size_t len = (size_t)(argc > 1 ? atoi(argv[1]) : 256) << 20;
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (size_t i = 0; i < len; i += 4096)
		p[i] = (unsigned char)(i >> 12 | 1);
	unsigned long sum = 0;
	for (size_t i = 0; i < len; i += 4096)
		sum += p[i];
	if (sum == 0)
		return 1;
	wait_line("touched");
	if (munmap(p, len) != 0) {
		perror("munmap");
		return 1;
	}
	wait_line("unmapped");
	return 0;
}
