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
