//! The host process sandboxes itself before the first KVM_RUN (#19):
//! no new privileges, no capabilities, a seccomp filter on the vCPU
//! thread (`--no-seccomp` leaves the filter out); a call outside the
//! allowlist stops vkernel with one line naming it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::c_program;

/// `field` of /proc/PID/status.
fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {field} in\n{status}"))
}

/// Starts a run of a program that waits on stdin; returns Seccomp,
/// NoNewPrivs and CapEff of the running vkernel.
fn sandbox_of_a_running_vkernel(extra: &[&str]) -> (String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "touch");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vkernel"))
        .arg("run")
        .args(extra)
        .arg("--")
        .arg(&exe)
        .arg("1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "touched");
    let got = (
        status_field(pid, "Seccomp:"),
        status_field(pid, "NoNewPrivs:"),
        status_field(pid, "CapEff:"),
    );
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\n\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    got
}

#[test]
fn a_running_vkernel_is_filtered_and_has_no_privileges() {
    let (seccomp, nnp, caps) = sandbox_of_a_running_vkernel(&[]);
    assert_eq!(
        (seccomp.as_str(), nnp.as_str(), caps.as_str()),
        ("2", "1", "0000000000000000")
    );
}

#[test]
fn no_seccomp_leaves_the_filter_out_but_still_drops_privileges() {
    let (seccomp, nnp, caps) = sandbox_of_a_running_vkernel(&["--no-seccomp"]);
    assert_eq!(
        (seccomp.as_str(), nnp.as_str(), caps.as_str()),
        ("0", "1", "0000000000000000")
    );
}

#[test]
fn a_call_outside_the_allowlist_stops_vkernel_with_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_vkernel"))
        .args(["run", "--seccomp-selftest", "--append", "exit=0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(159), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "vkernel: seccomp: system call {} is not allowed on the vCPU thread",
            libc::SYS_socket
        )),
        "{stderr}"
    );
    // Without the filter the same call is made and the run goes on.
    let out = Command::new(env!("CARGO_BIN_EXE_vkernel"))
        .args([
            "run",
            "--no-seccomp",
            "--seccomp-selftest",
            "--append",
            "exit=0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn with_a_debugger_every_thread_is_filtered() {
    // Waiting for gdb: the vCPU thread (in accept) and the watcher thread.
    let mut child = Command::new(env!("CARGO_BIN_EXE_vkernel"))
        .args(["run", "--gdb", "127.0.0.1:0", "--append", "exit=0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let line = err.next().unwrap().unwrap();
        if line.contains("waiting for gdb on") {
            break;
        }
    }
    // The vCPU thread enters its sandbox right after saying so.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        seen.clear();
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
            let tid: u32 = task.unwrap().file_name().to_str().unwrap().parse().unwrap();
            let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).unwrap();
            let field = |f: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(f))
                    .unwrap()
                    .trim()
                    .to_string()
            };
            seen.push((
                field("Name:"),
                field("Seccomp:"),
                field("NoNewPrivs:"),
                field("CapEff:"),
            ));
        }
        let all = seen
            .iter()
            .all(|(_, s, n, c)| s == "2" && n == "1" && c == "0000000000000000");
        if all || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: kill() of the child this test started, by its pid.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let _ = child.wait();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter()
            .all(|(_, s, n, c)| s == "2" && n == "1" && c == "0000000000000000"),
        "{seen:?}"
    );
}
