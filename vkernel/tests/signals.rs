//! Signals and process groups (#14): handlers with Linux's x86-64 frame
//! (registers and SIMD state intact), masks, queued real-time signals,
//! EINTR vs SA_RESTART, fault signals with si_addr, alternate stacks,
//! SIGCHLD and stop/continue through wait, process groups and sessions,
//! sigsuspend/sigtimedwait/pause, ITIMER_REAL, SIGPIPE, and hostile frames
//! that must kill only their process. One C program checks each against
//! Linux natively first, then in the guest.

mod common;

use common::c_checks_pass_natively_and_in_the_guest;

#[test]
fn signals_behave_as_on_linux() {
    let r = c_checks_pass_natively_and_in_the_guest("signals");
    // The hostile frames died with a report, and only their process.
    r.stderr_has("SIGSEGV at 0xffff800000001000");
}
