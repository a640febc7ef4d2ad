//! Signals and process groups (#14): handlers with Linux's x86-64 frame
//! (registers and SIMD state intact), masks, queued real-time signals,
//! EINTR vs SA_RESTART, fault signals with si_addr, alternate stacks,
//! SIGCHLD and stop/continue through wait, process groups and sessions,
//! sigsuspend/sigtimedwait/pause, ITIMER_REAL, SIGPIPE, and hostile frames
//! that must kill only their process. One C program checks each against
//! Linux natively first, then in the guest. Process file descriptors
//! (pidfd_open, pidfd_send_signal, pidfd_getfd, waitid(P_PIDFD)) are
//! checked the same way by tests/c/pidfd.c, on both pmaps.

mod common;

use common::{
    c_checks_pass_natively_and_in_the_guest, c_checks_pass_natively_and_in_the_guest_with,
};

#[test]
fn signals_behave_as_on_linux() {
    let r = c_checks_pass_natively_and_in_the_guest("signals");
    // The hostile frames died with a report, and only their process.
    r.stderr_has("SIGSEGV at 0xffff800000001000");
}

#[test]
fn pidfds_behave_as_on_linux_on_both_pmaps() {
    for pmap in ["host", "guest"] {
        c_checks_pass_natively_and_in_the_guest_with("pidfd", &[], &["--pmap", pmap]);
    }
}
