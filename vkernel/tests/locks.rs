//! File locks (#13): fcntl record locks, OFD locks and flock between a
//! process and its forked children, through a C program built at test
//! time with `gcc -static` that checks each call against what Linux does
//! (it prints `ok ...` lines and `N failed`); SQLite relies on these.

mod common;

use common::c_checks_pass_natively_and_in_the_guest;

#[test]
fn record_locks_ofd_locks_and_flock_behave_as_on_linux() {
    c_checks_pass_natively_and_in_the_guest("locks");
}
