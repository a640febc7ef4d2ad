//! Signals and process groups (#14): handlers with Linux's x86-64 frame
//! (registers and SIMD state intact), masks, queued real-time signals,
//! EINTR vs SA_RESTART, fault signals with si_addr, alternate stacks,
//! SIGCHLD and stop/continue through wait, process groups and sessions,
//! sigsuspend/sigtimedwait/pause, ITIMER_REAL, SIGPIPE, and hostile frames
//! that must kill only their process. One C program checks each against
//! Linux natively first, then in the guest.

mod common;

use std::process::Command;

use common::{c_program, vkernel};

#[test]
fn signals_behave_as_on_linux() {
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "signals");
    let native = Command::new(&exe).current_dir(dir.path()).output().unwrap();
    let native_out = String::from_utf8_lossy(&native.stdout);
    assert!(native_out.contains("\n0 failed"), "natively:\n{native_out}");
    let r = vkernel(&["run", "--", exe.to_str().unwrap()]);
    assert!(!r.stdout.contains("FAIL"), "{}\n{}", r.stdout, r.stderr);
    r.expect_code(0).stdout_has("\n0 failed");
    // The hostile frames died with a report, and only their process.
    r.stderr_has("SIGSEGV at 0xffff800000001000");
}
