//! Host stream errors (#19): a console write that fails on the host
//! reaches the guest's write/writev as that errno (ENOSPC on /dev/full,
//! checked against Linux natively; EPIPE + SIGPIPE is busybox.rs's
//! `a_writer_whose_host_reader_went_away_dies_of_sigpipe`), and vkernel's
//! own messages never panic on a full or closed stream.

mod common;

use std::fs::File;
use std::process::{Command, Output, Stdio};

use common::c_program;

fn full() -> Stdio {
    Stdio::from(File::options().write(true).open("/dev/full").unwrap())
}

fn vkernel(args: &[&str], stdout: Stdio, stderr: Stdio) -> Output {
    Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_vkernel"))
        .args(args)
        .stdout(stdout)
        .stderr(stderr)
        .output()
        .unwrap()
}

#[test]
fn enospc_from_the_host_console_reaches_write_and_writev() {
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "full");
    let exe = exe.to_str().unwrap();
    let want = "write: -1 No space left on device\nwritev: -1 No space left on device\n";
    let native = Command::new(exe).stdout(full()).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&native.stderr), want);
    for pmap in ["host", "guest"] {
        // The program's stdout on /dev/full; it reports on stderr.
        let out = vkernel(
            &["run", "--pmap", pmap, "--", exe, "1"],
            full(),
            Stdio::piped(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "--pmap {pmap}: {stderr}");
        assert!(stderr.contains(want), "--pmap {pmap}: {stderr}");
        // Its stderr on /dev/full; it reports on stdout.
        let out = vkernel(
            &["run", "--pmap", pmap, "--", exe, "2"],
            Stdio::piped(),
            full(),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "--pmap {pmap}: {stdout}");
        assert!(stdout.contains(want), "--pmap {pmap}: {stdout}");
    }
}

#[test]
fn a_crash_report_into_a_full_or_closed_stderr_is_still_exit_2() {
    let args = ["run", "--test-kernel", "--append", "fault=ud"];
    let out = vkernel(&args, Stdio::null(), full());
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = vkernel(&args, Stdio::null(), Stdio::null());
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // Closed, not redirected: `2>&-`.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} run --test-kernel --append fault=ud 2>&-",
            env!("CARGO_BIN_EXE_vkernel")
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn stats_and_guest_output_into_full_streams_do_not_panic() {
    // The guest's exit status comes through although nothing could be
    // written: neither its console output nor vkernel's stats line.
    let out = vkernel(&["run", "--stats", "--append", "exit=3"], full(), full());
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    // A refusal message into a closed stderr is still exit 1.
    let out = vkernel(
        &["run", "--kernel", "/nonexistent/kernel"],
        Stdio::null(),
        full(),
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}
