/* Protection keys (PKRU) are each thread's own, as on Linux: a value set
 * with WRPKRU survives system calls and other processes running, is not
 * seen by another process, and a process that denies itself key 0 (every
 * page's key) dies of SIGSEGV alone. Under vkernel on PVM ring 3 honours
 * PKRU whatever the vCPU's CR4 says, and the guest kernel itself runs in
 * ring 3 on key-0 pages: it must never run with a process's PKRU (a
 * process could otherwise stop the whole VM). Skipped where CPUID has no
 * OSPKE (hardware KVM: the guest's CR4.PKE is clear, WRPKRU is #UD).
 * Prints one line per check and "N failed". */
#include <cpuid.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static int failed;

static void check(const char *what, int ok, long got)
{
	if (!ok)
		failed++;
	printf("%s - %s (got %#lx)\n", ok ? "ok" : "FAIL", what, got);
	fflush(stdout);
}

static unsigned rdpkru(void)
{
	unsigned lo, hi;
	asm volatile("rdpkru" : "=a"(lo), "=d"(hi) : "c"(0));
	return lo;
}

static void wrpkru(unsigned v)
{
	asm volatile("wrpkru" ::"a"(v), "d"(0), "c"(0) : "memory");
}

int main(void)
{
	unsigned a, b, c, d;
	__cpuid_count(7, 0, a, b, c, d);
	if (!(c & (1 << 4))) {
		printf("ok - no OSPKE: skipped\n0 failed\n");
		return 0;
	}
	unsigned mine = rdpkru();
	/* A child denies itself writes to key 0, then makes a system call
	 * (the kernel runs next) and writes: SIGSEGV, for it alone. */
	pid_t pid = fork();
	if (pid == 0) {
		wrpkru(mine | 2);
		getppid();
		static volatile int x;
		x = 1;
		_exit(0);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	check("a process denying itself key 0 dies of SIGSEGV", WIFSIGNALED(st) && WTERMSIG(st) == 11, st);
	/* Access denied to key 0 with no system call between: the first
	 * load faults (the fault is the process's, never resolved by paging). */
	pid = fork();
	if (pid == 0) {
		static volatile int y;
		wrpkru(mine | 1);
		for (long i = 0; i < 100000000; i++)
			(void)y;
		_exit(0);
	}
	waitpid(pid, &st, 0);
	check("a process denying itself access to key 0 dies of SIGSEGV", WIFSIGNALED(st) && WTERMSIG(st) == 11, st);
	/* A child's value survives system calls and the parent running. */
	int p[2];
	pipe(p);
	pid = fork();
	if (pid == 0) {
		wrpkru(mine | 0xc0); /* deny key 3: harmless */
		char ch;
		read(p[0], &ch, 1); /* sleeps: the parent runs */
		getppid();
		_exit(rdpkru() == (mine | 0xc0) ? 0 : 1);
	}
	usleep(20000);
	check("the parent's PKRU is its own", rdpkru() == mine, rdpkru());
	write(p[1], "x", 1);
	waitpid(pid, &st, 0);
	check("a child's PKRU survives sleeps and system calls", WIFEXITED(st) && WEXITSTATUS(st) == 0, st);
	wrpkru(mine | 0x300); /* deny key 4 */
	getppid();
	check("this process's PKRU survives a system call", rdpkru() == (mine | 0x300), rdpkru());
	wrpkru(mine);
	printf("%d failed\n", failed);
	return failed != 0;
}
