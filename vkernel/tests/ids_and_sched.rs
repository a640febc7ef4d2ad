//! The identity and scheduling queries a process makes (getresuid,
//! getresgid, sched_get_priority_min/max, sched_rr_get_interval,
//! getpriority/setpriority),
//! checked against Linux by a C program (tests/c/idsched.c), natively
//! first, then in the guest on both pmaps. Not in processes.rs: that file
//! also runs inside QEMU (ci/qemu-kvm.sh), where there is no gcc.

mod common;

use common::c_checks_pass_natively_and_in_the_guest_with;

#[test]
fn id_and_scheduling_queries_answer_as_on_linux_on_both_pmaps() {
    for pmap in ["host", "guest"] {
        c_checks_pass_natively_and_in_the_guest_with("idsched", &[], &["--pmap", pmap]);
    }
}
