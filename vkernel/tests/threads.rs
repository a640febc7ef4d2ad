//! Threads (#15): pthreads (create/join, 64 at once, mutexes, condition
//! variables, barriers, cancel), TLS and SIMD registers per thread, signals
//! per thread (masks, tgkill, a process signal taken by a thread that does
//! not block it), futex operations and timeouts, shared futexes between
//! processes, robust mutexes, CLONE_CHILD_CLEARTID, thread-group exit
//! rules, execve from a thread, vfork and posix_spawn, /proc/self/task.
//! One C program checks each against Linux natively first, then in the
//! guest.

mod common;

use std::process::Command;

use common::{c_program, vkernel};

#[test]
fn threads_behave_as_on_linux() {
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "threads");
    let native = Command::new(&exe).current_dir(dir.path()).output().unwrap();
    let native_out = String::from_utf8_lossy(&native.stdout);
    assert!(native_out.contains("\n0 failed"), "natively:\n{native_out}");
    let r = vkernel(&["run", "--", exe.to_str().unwrap()]);
    assert!(!r.stdout.contains("FAIL"), "{}\n{}", r.stdout, r.stderr);
    r.expect_code(0).stdout_has("\n0 failed");
    // The thread that faulted was reported, and took its group with it.
    r.stderr_has("SIGSEGV at 0x8,");
}
