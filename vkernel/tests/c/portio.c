/* A process that runs I/O instructions (and other instructions ring 3 may
 * not run) is killed with SIGSEGV, as on Linux without ioperm(2); nothing
 * else happens: the machine, its parent and a sibling process go on.
 * Under vkernel the syscall port (0x60) is open in every process's I/O
 * bitmap for the syscall stub's one-byte `out`, so each instruction on
 * that port reaches the host, which must take it as the process's fault.
 * Prints one line per case and "N passed, N failed". */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int passed, failed;

static void check(const char *what, int ok, long got)
{
	if (ok) {
		passed++;
		printf("ok - %s\n", what);
	} else {
		failed++;
		printf("FAIL - %s (got %#lx)\n", what, got);
	}
	fflush(stdout);
}

static char buf[8192];

static void in_dx(void) { asm volatile("mov $0x60, %%dx; inb %%dx, %%al" ::: "rax", "rdx"); }
static void in_imm(void) { asm volatile("inl $0x60, %%eax" ::: "rax"); }
static void insb_(void)
{
	asm volatile("mov $0x60, %%dx; insb" ::"D"(buf) : "rdx", "memory");
}
static void rep_insb(void)
{
	asm volatile("mov $0x60, %%dx; rep insb" ::"D"(buf), "c"(sizeof buf) : "rdx", "memory");
}
static void outsb_(void)
{
	asm volatile("mov $0x60, %%dx; outsb" ::"S"(buf) : "rdx");
}
static void out_word(void) { asm volatile("mov $0x60, %%dx; outw %%ax, %%dx" ::"a"(0) : "rdx"); }
static void out_stub_port(void) { asm volatile("outb %%al, $0x60" ::"a"(39)); }
static void out_other(void) { asm volatile("outb %%al, $0x80" ::"a"(0)); }
static void in_other(void) { asm volatile("mov $0x3f8, %%dx; inb %%dx, %%al" ::: "rax", "rdx"); }
static void hlt_(void) { asm volatile("hlt"); }
static void cli_(void) { asm volatile("cli"); }

/* Runs `f` in a child; returns its wait status. */
static int in_child(void (*f)(void))
{
	pid_t pid = fork();
	if (pid == 0) {
		f();
		_exit(0); /* the instruction did nothing */
	}
	int status = -1;
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

int main(void)
{
	static const struct {
		const char *name;
		void (*f)(void);
	} cases[] = {
		{"in al, dx (syscall port)", in_dx},
		{"in eax, 0x60", in_imm},
		{"insb", insb_},
		{"rep insb", rep_insb},
		{"outsb", outsb_},
		{"out dx, ax (syscall port)", out_word},
		{"out 0x60, al (not from the stub)", out_stub_port},
		{"out 0x80, al", out_other},
		{"in al, dx (0x3f8)", in_other},
		{"hlt", hlt_},
		{"cli", cli_},
	};
	/* A sibling that must survive every case: echoes what it reads. */
	int to[2], from[2];
	if (pipe(to) || pipe(from))
		return 2;
	pid_t echo = fork();
	if (echo == 0) {
		char c;
		close(to[1]);
		close(from[0]);
		while (read(to[0], &c, 1) == 1)
			if (write(from[1], &c, 1) != 1)
				break;
		_exit(0);
	}
	close(to[0]);
	close(from[1]);
	char line[160];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int st = in_child(cases[i].f);
		snprintf(line, sizeof line, "%s: the process is killed by SIGSEGV", cases[i].name);
		check(line, WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, st);
		char c = 'a' + (char)i, back = 0;
		int ok = write(to[1], &c, 1) == 1 && read(from[0], &back, 1) == 1 && back == c;
		snprintf(line, sizeof line, "%s: a sibling process still answers", cases[i].name);
		check(line, ok, back);
	}
	close(to[1]);
	int st = -1;
	check("the sibling exits normally", waitpid(echo, &st, 0) == echo && WIFEXITED(st) && WEXITSTATUS(st) == 0, st);
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
