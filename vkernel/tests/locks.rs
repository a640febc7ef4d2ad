//! File locks (#13): fcntl record locks, OFD locks and flock between a
//! process and its forked children, through a C program built at test
//! time with `gcc -static` that checks each call against what Linux does
//! (it prints `ok ...` lines and `N failed`); SQLite relies on these.

mod common;

use std::process::Command;

use common::{c_program, vkernel};

#[test]
fn record_locks_ofd_locks_and_flock_behave_as_on_linux() {
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "locks");
    // The same program passes natively (it checks Linux's own behaviour).
    let work = tempfile::tempdir().unwrap();
    let native = Command::new(&exe)
        .current_dir(work.path())
        .output()
        .unwrap();
    let native_out = String::from_utf8_lossy(&native.stdout);
    assert!(native_out.contains("\n0 failed"), "natively:\n{native_out}");
    let r = vkernel(&["run", "--", exe.to_str().unwrap()]);
    r.expect_code(0).stdout_has("\n0 failed");
    assert!(!r.stdout.contains("FAIL"), "{}", r.stdout);
}
