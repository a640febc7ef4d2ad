//! Waiting on many (#13): poll, ppoll, select, pselect6, epoll and
//! eventfd, through a C program built at test time with `gcc -static`
//! that checks each call against what Linux does (natively too); and a
//! process waiting on the console in poll or epoll_wait, which is woken
//! by input and costs the host no CPU while it waits.

mod common;

use std::io::{Read, Write};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{c_program, vkernel, with_pmap};

#[test]
fn poll_select_epoll_and_eventfd_behave_as_on_linux() {
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "poll");
    let native = Command::new(&exe).current_dir(dir.path()).output().unwrap();
    let native_out = String::from_utf8_lossy(&native.stdout);
    assert!(native_out.contains("0 failed"), "natively:\n{native_out}");
    let r = vkernel(&["run", "--", exe.to_str().unwrap()]);
    r.expect_code(0).stdout_has("0 failed");
    assert!(!r.stdout.contains("FAIL"), "{}", r.stdout);
}

/// CPU time (user + system, clock ticks) process `pid` has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which ends with the last ')').
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Runs the program waiting on the console (`how`), lets it wait a
/// second, checks the host spent (almost) no CPU meanwhile, then types a
/// line and expects it woken and echoing it.
fn console_wait(how: &str, expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "poll");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vkernel"))
        .args(with_pmap(&["run", "--", exe.to_str().unwrap(), how]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running vkernel");
    let pid = child.id();
    // Boot and reach the wait, then measure a second of waiting.
    std::thread::sleep(Duration::from_millis(1500));
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(pid) - before;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello\n").unwrap();
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success() && out.contains(expect) && out.contains("got 6: hello"),
        "status {status}\n--- stdout\n{out}\n--- stderr\n{err}"
    );
    // 100 ticks a second: a busy wait would use ~100.
    assert!(used <= 5, "{used} ticks of host CPU in a second of waiting");
}

#[test]
fn poll_on_the_console_is_woken_by_input_and_idles_without_cpu() {
    console_wait("console-poll", "poll 1 revents 0x1");
}

#[test]
fn epoll_on_the_console_is_woken_by_input_and_idles_without_cpu() {
    console_wait("console-epoll", "epoll_wait 1 data 7");
}

#[test]
fn a_regular_file_as_stdin_is_always_ready_and_not_for_epoll() {
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "poll");
    let input = dir.path().join("input");
    std::fs::write(&input, "hello\n").unwrap();
    for (how, expect) in [
        ("console-poll", "poll 1 revents 0x1"),
        // As natively: epoll_ctl refuses a regular file (EPERM).
        ("console-epoll", "epoll_ctl -1"),
    ] {
        let out = Command::new("timeout")
            .arg("60")
            .arg(env!("CARGO_BIN_EXE_vkernel"))
            .args(with_pmap(&["run", "--", exe.to_str().unwrap(), how]))
            .stdin(std::fs::File::open(&input).unwrap())
            .output()
            .unwrap();
        let native = Command::new(&exe)
            .arg(how)
            .stdin(std::fs::File::open(&input).unwrap())
            .output()
            .unwrap();
        let (out, native) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&native.stdout),
        );
        assert!(native.contains(expect), "natively: {native}");
        assert!(
            out.contains(expect) && out.contains("got 6: hello"),
            "{how}: {out}"
        );
    }
}
