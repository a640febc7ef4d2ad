//! Threads (#15): pthreads (create/join, 64 at once, mutexes, condition
//! variables, barriers, cancel), TLS and SIMD registers per thread, signals
//! per thread (masks, tgkill, a process signal taken by a thread that does
//! not block it), futex operations and timeouts, shared futexes between
//! processes, robust mutexes, CLONE_CHILD_CLEARTID, thread-group exit
//! rules, execve from a thread, vfork and posix_spawn, /proc/self/task.
//! One C program checks each against Linux natively first, then in the
//! guest.

mod common;

use common::c_checks_pass_natively_and_in_the_guest;

#[test]
fn threads_behave_as_on_linux() {
    let r = c_checks_pass_natively_and_in_the_guest("threads");
    // The thread that faulted was reported, and took its group with it.
    r.stderr_has("SIGSEGV at 0x8,");
}
