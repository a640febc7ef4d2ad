/* Init of tests/jail.rs's --rootfs: prints /etc/message (read from the
 * host directory through hostfs, after vkernel pivoted into its jail),
 * waits for its stdin to close, reads the file again and says bye. */
#include <stdio.h>
#include <unistd.h>

static void show(void)
{
	char buf[256];
	FILE *f = fopen("/etc/message", "r");
	if (!f) {
		perror("/etc/message");
		_exit(1);
	}
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	printf("message: %s", buf);
	fflush(stdout);
}

int main(void)
{
	show();
	char c;
	while (read(0, &c, 1) > 0)
		;
	show();
	printf("bye\n");
	return 0;
}
