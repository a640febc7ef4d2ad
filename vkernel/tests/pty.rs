//! Pseudo-terminals (/dev/ptmx, devpts): the C checks of tests/c/pty.c
//! against Linux, natively first, then in the guest on both pmaps; and
//! real programs that live on ptys, from the host's root, compared with
//! the same commands on the host: Python's `pty` module, util-linux's
//! `script`, and a tmux server with a detached session.

mod common;

use common::{c_checks_pass_natively_and_in_the_guest_with, same_as_host};

#[test]
fn pseudo_terminals_behave_as_on_linux_on_both_pmaps() {
    for pmap in ["host", "guest"] {
        c_checks_pass_natively_and_in_the_guest_with("pty", &[], &["--pmap", pmap]);
    }
}

/// A child on a pty (pty.fork: forkpty) that reads a line and answers
/// through its terminal; the parent talks to it through the master.
const PYTHON_PTY: &str = r#"
import os, pty, select, sys
pid, fd = pty.fork()
if pid == 0:
    print("isatty", sys.stdin.isatty(), sys.stdout.isatty(), os.ttyname(0).startswith("/dev/pts/"))
    print("hello", input("name? "))
    sys.exit(7)
out = b""
while True:
    r, _, _ = select.select([fd], [], [], 5)
    if not r:
        break
    try:
        d = os.read(fd, 1024)
    except OSError:  # EIO: the child's side closed
        break
    out += d
    if out.endswith(b"name? "):
        os.write(fd, b"world\n")
_, st = os.waitpid(pid, 0)
print(repr(out), os.waitstatus_to_exitcode(st))
m, s = os.openpty()
os.write(s, b"x\n")
print(os.read(m, 10), os.get_terminal_size(s))
"#;

#[test]
fn python_pty_module_works_as_on_the_host() {
    let out = same_as_host(&["/usr/bin/python3", "-c", PYTHON_PTY]);
    assert!(out.contains("hello world"), "{out}");
}

#[test]
fn script_runs_a_command_on_a_pty_as_on_the_host() {
    let script = "/usr/bin/script";
    assert!(
        std::path::Path::new(script).exists(),
        "{script} is missing (ci/setup.sh installs bsdutils)"
    );
    // The pty's number is whichever is free (on the host, other tests'
    // ptys may hold the first ones): compared without it.
    let out = same_as_host(&[
        "/bin/bash",
        "-c",
        "script -q -c 'tty | sed s/[0-9]*$/N/; stty size; stty -a | head -1; echo hi' /dev/null | tr -d '\\r'",
    ]);
    assert!(out.starts_with("/dev/pts/N\n"), "{out}");
}

#[test]
fn tmux_runs_a_detached_session_as_on_the_host() {
    let tmux = "/usr/bin/tmux";
    assert!(
        std::path::Path::new(tmux).exists(),
        "{tmux} is missing (ci/setup.sh installs tmux)"
    );
    // The socket lives in /var/tmp: the host's, and in the guest the
    // overlay's upper layer over it. A socket name per run: tests run
    // natively and in the guest at once elsewhere.
    let sock = format!("/var/tmp/vk-tmux-{}", std::process::id());
    let cmd = format!(
        "tmux -S {sock} new-session -d -x 90 -y 20 'echo in tmux; stty size; tty | cut -c1-9; sleep 30' \
         && sleep 1 && tmux -S {sock} capture-pane -p | grep . ; tmux -S {sock} kill-server; rm -f {sock}"
    );
    let out = same_as_host(&["/bin/bash", "-c", &cmd]);
    assert_eq!(out, "in tmux\n20 90\n/dev/pts/\n");
}
