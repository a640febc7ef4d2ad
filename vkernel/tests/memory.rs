//! Host memory the guest can make the host hold is bounded and visible
//! (#19): pool pages a process gave back go back to the host (its RSS
//! falls after a process touched and unmapped 256 MiB), `--stats` says
//! how many, and a `--pool` larger than the host can back is capped with
//! a warning.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::c_program;

/// VmRSS of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn pages_a_process_unmapped_go_back_to_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "touch");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vkernel"))
        .args(["run", "--pmap", "host", "--stats", "--"])
        .arg(&exe)
        .arg("256")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut wait_for = |what: &str| loop {
        match lines.next() {
            Some(Ok(l)) if l == what => break,
            Some(Ok(_)) => {}
            other => panic!("vkernel ended before {what:?}: {other:?}"),
        }
    };
    wait_for("touched");
    let touched = rss_kib(pid);
    stdin.write_all(b"\n").unwrap();
    wait_for("unmapped");
    let unmapped = rss_kib(pid);
    stdin.write_all(b"\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        touched > 256 << 10,
        "RSS {touched} KiB after touching 256 MiB"
    );
    // The pool keeps 16 MiB of free pages ready; the rest goes back.
    assert!(
        unmapped + (200 << 10) < touched,
        "RSS {touched} KiB after touching, {unmapped} KiB after unmapping"
    );
    let given_back: u64 = stderr
        .split(" pool pages given back")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(given_back >= 200 * 256, "{stderr}");
}

/// MemAvailable + SwapFree, in MiB.
fn backable_mib() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap();
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("MemAvailable:") + field("SwapFree:")) >> 10
}

#[test]
fn a_pool_larger_than_the_host_can_back_is_capped_with_a_warning() {
    let out = Command::new(env!("CARGO_BIN_EXE_vkernel"))
        .args(["run", "--pool", "65536", "--append", "exit=0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    if backable_mib() < 65536 {
        assert!(
            stderr.contains("vkernel: --pool 65536 MiB is more than this host can back")
                && stderr.contains("; using --pool "),
            "{stderr}"
        );
    }
    // Under an address-space limit, whatever the machine has.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 2097152 && {} run --pool 65536 --append exit=0",
            env!("CARGO_BIN_EXE_vkernel")
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("RLIMIT_AS: 2048 MiB"), "{stderr}");
}

/// The number before `what` in a `--stats` line (`780 faults resolved by
/// the host`, `776 page faults`).
fn stat(stderr: &str, what: &str) -> u64 {
    let before = stderr
        .split(what)
        .next()
        .filter(|b| b.len() < stderr.len())
        .unwrap_or_else(|| panic!("no `{what}` in\n{stderr}"));
    before
        .rsplit(' ')
        .find(|w| !w.is_empty())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count before `{what}` in\n{stderr}"))
}

#[test]
fn a_sequential_first_touch_takes_one_fault_per_growing_window_on_both_pmaps() {
    // /bin/systest touchbench: 7 times, map 16 MiB, write each page in
    // order, unmap. With the 64-page window alone that is 448 faults; the
    // window doubles for each fault on the page past the last one, up to
    // 512 pages, so each 16 MiB takes 11. (About a second a pmap.)
    let rounds = 7u64;
    let per_round_at_64 = 4096 / 64;
    for pmap in ["host", "guest"] {
        let out = Command::new(env!("CARGO_BIN_EXE_vkernel"))
            .args(["run", "--stats", "--memory", "128", "--pmap", pmap])
            .args(["--append", "init=/bin/systest -- touchbench 4096"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "pmap={pmap}: {stderr}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("bench first_touch median_ns="),
            "pmap={pmap}: {stderr}"
        );
        let resolved = stat(&stderr, " faults resolved by the host");
        assert!(
            resolved <= rounds * per_round_at_64 / 2,
            "pmap={pmap}: {resolved} host-resolved faults for {rounds} x 4096 pages\n{stderr}"
        );
        if pmap == "guest" {
            // Each window is one trip through the guest kernel's fault
            // handler, and one host fault that shadows it.
            let to_kernel = stat(&stderr, " page faults,");
            assert!(
                to_kernel <= rounds * per_round_at_64 / 2,
                "{to_kernel} page faults to the guest kernel\n{stderr}"
            );
        }
    }
}
