//! Timers: POSIX timers (timer_create, SIGEV_SIGNAL/NONE/THREAD_ID,
//! overruns, absolute deadlines, CPU-time clocks), ITIMER_VIRTUAL and
//! ITIMER_PROF, what fork and execve keep of them, and a process's CPU
//! time counting its threads. One C program checks each against Linux
//! natively first, then in the guest.

mod common;

use common::c_checks_pass_natively_and_in_the_guest;

#[test]
fn timers_behave_as_on_linux() {
    c_checks_pass_natively_and_in_the_guest("timers");
}
