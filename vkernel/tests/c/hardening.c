/* Smaller hardening checks of #19, each as Linux behaves (run natively
 * first): writev with lengths that overflow is EINVAL; futex on a kernel
 * address is EFAULT for every operation; a VEX-encoded instruction that
 * raises #GP (a misaligned vmovaps, a non-canonical address) is SIGSEGV
 * with si_code SI_KERNEL, as the legacy-encoded one, never SIGILL.
 * Prints one line per check and "N failed". */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static int failed;

static void check(const char *what, int ok, long got)
{
	if (!ok)
		failed++;
	printf("%s - %s (got %ld)\n", ok ? "ok" : "FAIL", what, got);
	fflush(stdout);
}

/* -errno of a raw system call, or its result. */
static long sys(long n, long a, long b, long c, long d, long e, long f)
{
	long r = syscall(n, a, b, c, d, e, f);
	return r < 0 ? -errno : r;
}

static void writev_checks(void)
{
	int p[2];
	pipe(p);
	char buf[8] = "x";
	struct iovec huge[1] = { { buf, (size_t)SSIZE_MAX + 1 } };
	check("writev: one length above SSIZE_MAX -> EINVAL",
	      sys(SYS_writev, p[1], (long)huge, 1, 0, 0, 0) == -EINVAL,
	      sys(SYS_writev, p[1], (long)huge, 1, 0, 0, 0));
	struct iovec wrap[2] = { { buf, 1 }, { buf, (size_t)-1 } };
	long r = sys(SYS_writev, p[1], (long)wrap, 2, 0, 0, 0);
	check("writev: lengths whose sum wraps -> EINVAL", r == -EINVAL, r);
	r = sys(SYS_readv, p[0], (long)wrap, 2, 0, 0, 0);
	check("readv: lengths whose sum wraps -> EINVAL", r == -EINVAL, r);
	close(p[0]);
	close(p[1]);
}

static void futex_checks(void)
{
	static uint32_t word;
	const long kernel[] = { (long)0xffff800000000000UL, (long)0xffffffffff600000UL,
				(long)0xfffffffffffffffcUL };
	for (unsigned i = 0; i < sizeof kernel / sizeof kernel[0]; i++) {
		long a = kernel[i];
		long r = sys(SYS_futex, a, FUTEX_WAKE, 1, 0, 0, 0);
		check("futex: WAKE on a kernel address -> EFAULT", r == -EFAULT, r);
		r = sys(SYS_futex, a, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, 0, 0, 0);
		check("futex: private WAKE on a kernel address -> EFAULT", r == -EFAULT, r);
		r = sys(SYS_futex, a, FUTEX_WAIT, 0, 0, 0, 0);
		check("futex: WAIT on a kernel address -> EFAULT", r == -EFAULT, r);
		r = sys(SYS_futex, a, FUTEX_WAKE_BITSET, 1, 0, 0, -1);
		check("futex: WAKE_BITSET on a kernel address -> EFAULT", r == -EFAULT, r);
		r = sys(SYS_futex, (long)&word, FUTEX_REQUEUE, 1, 1, a, 0);
		check("futex: REQUEUE to a kernel address -> EFAULT", r == -EFAULT, r);
		r = sys(SYS_futex, (long)&word, FUTEX_WAKE_OP, 1, 1, a, 0);
		check("futex: WAKE_OP on a kernel address -> EFAULT", r == -EFAULT, r);
	}
	long r = sys(SYS_futex, (long)&word, FUTEX_WAKE, 1, 0, 0, 0);
	check("futex: WAKE on a user word with no waiter -> 0", r == 0, r);
}

static sigjmp_buf jump;
static volatile int caught_sig, caught_code;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	caught_sig = sig;
	caught_code = si->si_code;
	siglongjmp(jump, 1);
}

static char aligned[128] __attribute__((aligned(64)));

static void fault(void (*f)(void), int sig, const char *what)
{
	caught_sig = 0;
	if (!sigsetjmp(jump, 1))
		f();
	check(what, caught_sig == sig && caught_code == SI_KERNEL, caught_sig * 1000 + caught_code);
}

static void gp(void (*f)(void), const char *what)
{
	fault(f, SIGSEGV, what);
}

static void vmovaps_misaligned(void)
{
	asm volatile("vmovaps (%0), %%ymm0" ::"r"(aligned + 1) : "xmm0");
}
static void vmovdqu_noncanonical(void)
{
	asm volatile("vmovdqu (%0), %%ymm0" ::"r"(0x8000000000000000UL) : "xmm0");
}
static void vex_store_noncanonical(void)
{
	asm volatile("vmovdqu %%ymm0, (%0)" ::"r"(0x8000000000001000UL) : "memory");
}
static void vex_stack_noncanonical(void)
{
	/* rbp-based: the stack segment, #SS rather than #GP. */
	asm volatile("push %%rbp; mov %0, %%rbp; vmovdqu 8(%%rbp), %%ymm0; pop %%rbp"
		     ::"r"(0x8000000000000000UL) : "xmm0");
}
static void mov_stack_noncanonical(void)
{
	asm volatile("push %%rbp; mov %0, %%rbp; mov 8(%%rbp), %%rax; pop %%rbp"
		     ::"r"(0x8000000000000000UL) : "rax");
}
static void movaps_misaligned(void)
{
	asm volatile("movaps (%0), %%xmm0" ::"r"(aligned + 1) : "xmm0");
}

static void vex_checks(void)
{
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO | SA_NODEFER };
	sigaction(SIGSEGV, &sa, 0);
	sigaction(SIGILL, &sa, 0);
	sigaction(SIGBUS, &sa, 0);
	gp(movaps_misaligned, "#GP: misaligned movaps -> SIGSEGV SI_KERNEL");
	fault(mov_stack_noncanonical, SIGBUS,
	      "#SS: load from a non-canonical rbp-based address -> SIGBUS SI_KERNEL");
	if (!__builtin_cpu_supports("avx")) {
		printf("ok - VEX checks skipped: no AVX\n");
		return;
	}
	gp(vmovaps_misaligned, "#GP: misaligned VEX vmovaps -> SIGSEGV SI_KERNEL");
	gp(vmovdqu_noncanonical, "#GP: VEX load from a non-canonical address -> SIGSEGV SI_KERNEL");
	gp(vex_store_noncanonical, "#GP: VEX store to a non-canonical address -> SIGSEGV SI_KERNEL");
	fault(vex_stack_noncanonical, SIGBUS,
	      "#SS: VEX load from a non-canonical rbp-based address -> SIGBUS SI_KERNEL");
}

int main(void)
{
	writev_checks();
	futex_checks();
	vex_checks();
	printf("%d failed\n", failed);
	return failed != 0;
}
