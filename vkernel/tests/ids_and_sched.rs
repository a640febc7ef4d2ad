//! The identity and scheduling queries a process makes (getresuid,
//! getresgid, sched_get_priority_min/max, sched_rr_get_interval,
//! getpriority/setpriority), and its credentials (the set*id calls, the
//! capabilities, what fork and exec do with them, who owns the files it
//! makes), checked against Linux by C programs (tests/c/idsched.c,
//! tests/c/creds.c), natively first, then in the guest on both pmaps;
//! and real programs that change ids, against the host. Not in
//! processes.rs: that file also runs inside QEMU (ci/qemu-kvm.sh), where
//! there is no gcc.

mod common;

use common::{c_checks_pass_natively_and_in_the_guest_with, same_as_host};

#[test]
fn id_and_scheduling_queries_answer_as_on_linux_on_both_pmaps() {
    for pmap in ["host", "guest"] {
        c_checks_pass_natively_and_in_the_guest_with("idsched", &[], &["--pmap", pmap]);
    }
}

#[test]
fn credentials_change_as_on_linux_on_both_pmaps() {
    for pmap in ["host", "guest"] {
        c_checks_pass_natively_and_in_the_guest_with("creds", &[], &["--pmap", pmap]);
    }
}

#[test]
fn make_and_setpriv_run_as_on_the_host() {
    // GNU make starts each recipe with posix_spawn, whose child resets
    // its effective ids (setresuid, setresgid): that was ENOSYS, and make
    // failed every recipe. util-linux's setpriv drops to a user and
    // execs `id`, which names the ids it runs with.
    let dir = tempfile::TempDir::new_in("/var/tmp").unwrap();
    let makefile = dir.path().join("Makefile");
    std::fs::write(
        &makefile,
        "all: b\n\t@echo all from $$(id -u)\nb:\n\t@echo b; echo c | tr c d\n",
    )
    .unwrap();
    let out = same_as_host(&["make", "-s", "-f", makefile.to_str().unwrap(), "all"]);
    assert_eq!(out, "b\nd\nall from 0\n");
    let out = same_as_host(&[
        "setpriv",
        "--reuid=1000",
        "--regid=1000",
        "--clear-groups",
        "sh",
        "-c",
        "id -u; id -g; grep -E '^(Uid|Gid|CapEff)' /proc/self/status",
    ]);
    assert!(
        out.starts_with("1000\n1000\nUid:\t1000\t1000\t1000\t1000\n"),
        "{out}"
    );
}
