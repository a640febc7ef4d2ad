//! vkernel under a real pseudo-terminal: the host terminal in raw mode
//! for the run and restored after every kind of exit, the interactive
//! busybox shell (`vkernel run --image busybox`) with line editing,
//! history, pipelines, background jobs, Ctrl-C, Ctrl-Z, `jobs`, `fg`,
//! `stty`, the window size and SIGWINCH, and the Ctrl-] q escape.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

/// Builds target/images/busybox.cpio once per test binary.
fn image() -> &'static str {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../images/busybox/build.sh");
        let out = Command::new("bash").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    concat!(env!("CARGO_MANIFEST_DIR"), "/../target/images/busybox.cpio")
}

/// A pseudo-terminal with vkernel on its slave side (its controlling
/// terminal, as in a terminal emulator).
struct Session {
    master: OwnedFd,
    /// Kept to read the terminal's settings while and after vkernel runs.
    slave: OwnedFd,
    child: Child,
    /// Everything read from the master so far, and how much `expect` has
    /// consumed.
    seen: Vec<u8>,
    at: usize,
    /// The terminal's settings before the run.
    before: libc::termios,
}

fn termios(fd: &OwnedFd) -> libc::termios {
    // SAFETY: zeroed termios is valid for tcgetattr to fill.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr writes into `t`.
    assert_eq!(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) }, 0);
    t
}

fn same(a: &libc::termios, b: &libc::termios) -> bool {
    a.c_iflag == b.c_iflag
        && a.c_oflag == b.c_oflag
        && a.c_cflag == b.c_cflag
        && a.c_lflag == b.c_lflag
        && a.c_cc == b.c_cc
}

impl Session {
    fn start(args: &[&str]) -> Session {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vkernel"));
        cmd.args(common::with_pmap(args));
        Session::spawn(cmd)
    }

    /// Runs `cmd` on the slave side of a new 30 x 100 pty.
    fn spawn(mut cmd: Command) -> Session {
        let (mut m, mut s) = (-1, -1);
        let ws = libc::winsize {
            ws_row: 30,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty fills the two descriptors.
        let r =
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(r, 0, "openpty");
        // SAFETY: openpty returned two fresh descriptors we now own.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        let before = termios(&slave);
        let io = || Stdio::from(slave.try_clone().unwrap());
        cmd.stdin(io()).stdout(io()).stderr(io());
        // SAFETY: setsid and ioctl are async-signal-safe; the child makes
        // the pty its controlling terminal, so a resize is its SIGWINCH.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("running vkernel");
        // SAFETY: fcntl on our descriptor.
        unsafe {
            let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        Session {
            master,
            slave,
            child,
            seen: Vec::new(),
            at: 0,
            before,
        }
    }

    /// Reads what is there, waiting up to `ms` for something.
    fn pump(&mut self, ms: i32) {
        let mut p = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd.
        if unsafe { libc::poll(&mut p, 1, ms) } <= 0 {
            return;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: reads into our buffer.
        let n = unsafe { libc::read(self.master.as_raw_fd(), buf.as_mut_ptr().cast(), 4096) };
        if n > 0 {
            self.seen.extend_from_slice(&buf[..n as usize]);
        } else {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (up to 20 s) for `what` to appear after what earlier expects
    /// consumed; returns the text up to and including it.
    fn expect(&mut self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let hay = &self.seen[self.at..];
            if let Some(i) = hay.windows(what.len()).position(|w| w == what.as_bytes()) {
                let got = String::from_utf8_lossy(&hay[..i + what.len()]).into_owned();
                self.at += i + what.len();
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "no {what:?} on the terminal; it shows:\n{}",
                String::from_utf8_lossy(&self.seen)
            );
            self.pump(50);
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        // SAFETY: writes our bytes.
        let n = unsafe { libc::write(self.master.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        assert_eq!(n, bytes.len() as isize);
    }

    /// Types a command line, waits for its echo and then the next prompt
    /// (not a redraw of this one); returns the text from the echo's end.
    fn run(&mut self, line: &str) -> String {
        self.send(line.as_bytes());
        self.send(b"\r");
        let echo = format!("{line}\r\n");
        self.expect(&echo);
        format!("\r\n{}", self.expect(PROMPT))
    }

    /// At the prompt of the image's /init (a login shell, pid 1).
    fn shell(&mut self) {
        self.expect(PROMPT);
        // The terminal is raw while vkernel runs.
        let t = termios(&self.slave);
        assert_eq!(t.c_lflag & (libc::ICANON | libc::ECHO | libc::ISIG), 0);
        assert_eq!(t.c_oflag & libc::OPOST, 0);
    }

    /// The check lines (`ok - ...`, `FAIL - ...`) shown so far.
    fn checks(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.seen)
            .split('\n')
            .map(|l| l.trim_matches('\r'))
            .filter(|l| {
                l.starts_with("ok - ") || l.starts_with("FAIL - ") || l.ends_with(" failed")
            })
            .map(str::to_owned)
            .collect()
    }

    /// Waits for vkernel to end; its exit status (or 128 + signal).
    fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.pump(20);
            if let Some(st) = self.child.try_wait().unwrap() {
                use std::os::unix::process::ExitStatusExt;
                return st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
            }
            assert!(Instant::now() < deadline, "vkernel did not end");
        }
    }

    /// The terminal's settings are what they were before the run.
    fn assert_restored(&self) {
        let after = termios(&self.slave);
        assert!(
            same(&self.before, &after),
            "terminal not restored: before {:?} after {:?}",
            (
                self.before.c_iflag,
                self.before.c_oflag,
                self.before.c_lflag
            ),
            (after.c_iflag, after.c_oflag, after.c_lflag)
        );
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The busybox image's prompt (PS1 '\w # ' from /etc/profile, at /).
const PROMPT: &str = "/ # ";

#[test]
fn the_interactive_shell_edits_lines_runs_jobs_and_takes_ctrl_c_and_ctrl_z() {
    let mut s = Session::start(&["run", "--image", image()]);
    s.shell();
    // Echo with CR LF, line editing (a typo erased), history (up arrow).
    assert!(s.run("echo $((6 * 7))").contains("\r\n42\r\n"));
    s.send(b"echo abcX\x7f\r");
    let out = s.expect(PROMPT);
    assert!(out.contains("\r\nabc\r\n"), "{out:?}");
    s.send(b"\x1b[A");
    s.expect("echo abc");
    let out = s.run("");
    assert!(out.contains("\r\nabc\r\n"), "history: {out:?}");
    // Pipelines and background jobs.
    assert!(s.run("echo one two | tr a-z A-Z").contains("ONE TWO"));
    let out = s.run("sleep 0.2 & wait; echo waited $?");
    assert!(out.contains("waited 0"), "{out:?}");
    // Ctrl-C ends a foreground `sleep 100` at once, with status 130.
    s.send(b"sleep 100\r");
    s.expect("sleep 100\r\n");
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    s.send(b"\x03");
    s.expect(PROMPT);
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(2), "Ctrl-C took {took:?}");
    assert!(s.run("echo status $?").contains("status 130"));
    // Ctrl-Z stops it; jobs lists it; fg brings it back (and Ctrl-C ends it).
    s.send(b"sleep 50\r");
    s.expect("sleep 50\r\n");
    std::thread::sleep(Duration::from_millis(300));
    s.send(b"\x1a");
    s.expect("Stopped");
    s.expect(PROMPT);
    let out = s.run("jobs");
    assert!(
        out.contains("Stopped") && out.contains("sleep 50"),
        "{out:?}"
    );
    s.send(b"fg\r");
    s.expect("sleep 50");
    std::thread::sleep(Duration::from_millis(300));
    s.send(b"\x03");
    s.expect(PROMPT);
    let out = s.run("jobs; echo none left");
    assert!(
        !out.contains("sleep 50") && out.contains("none left"),
        "{out:?}"
    );
    // Ctrl-] q ends the run whatever the guest does.
    s.send(b"\x1dq");
    assert_eq!(s.wait(), 130);
    s.assert_restored();
}

#[test]
fn stty_reports_the_termios_and_raw_mode_and_the_window_size_follow() {
    let mut s = Session::start(&["run", "--image", image()]);
    s.shell();
    let out = s.run("stty -a");
    for want in [
        "rows 30; columns 100;",
        "intr = ^C; quit = ^\\; erase = ^?; kill = ^U; eof = ^D;",
        "susp = ^Z;",
        "min = 1; time = 0;",
        " icrnl ixon ",
        "opost ",
        " onlcr ",
        "isig icanon iexten echo echoe echok -echonl -noflsh",
        "-tostop",
        "echoctl echoke",
    ] {
        assert!(out.contains(want), "stty -a lacks {want:?}:\n{out}");
    }
    // Raw mode: bytes one at a time, no echo, no CR added to output.
    s.send(b"stty raw -echo; dd bs=1 count=3 2>/dev/null | od -c; stty sane\r");
    s.expect("stty sane\r\n");
    std::thread::sleep(Duration::from_millis(300));
    s.send(b"x\x03z");
    let out = s.expect(PROMPT);
    assert!(
        out.contains("0000000   x 003   z\n0000003\n"),
        "raw input: {out:?}"
    );
    // Canonical again: a line at a time, ERASE and KILL.
    s.send(b"read a; echo \"got $a\"\r");
    s.expect("read a; echo \"got $a\"\r\n");
    // Typed once `read` waits: before, the line editor's raw mode would
    // take it (and the switch to canonical mode make it one line as is,
    // as Linux's n_tty does).
    std::thread::sleep(Duration::from_millis(300));
    s.send(b"junk\x15good\x7fd line\r");
    let out = s.expect(PROMPT);
    assert!(out.contains("got good line"), "{out:?}");
    // The host terminal's new size reaches the guest (SIGWINCH to vkernel).
    let ws = libc::winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize.
    let r = unsafe { libc::ioctl(s.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    assert_eq!(r, 0);
    std::thread::sleep(Duration::from_millis(300));
    let out = s.run("stty size");
    assert!(out.contains("\r\n40 120\r\n"), "{out:?}");
    // The foreground job gets SIGWINCH: a trap in a child shell sees it.
    s.send(b"sh -c 'trap \"echo winched; exit 0\" WINCH; while :; do sleep 0.05; done'\r");
    std::thread::sleep(Duration::from_millis(500));
    let ws = libc::winsize { ws_row: 41, ..ws };
    // SAFETY: as above.
    unsafe { libc::ioctl(s.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    s.expect("winched");
    s.expect(PROMPT);
    s.send(b"\x1dq");
    assert_eq!(s.wait(), 130);
    s.assert_restored();
}

#[test]
fn a_background_read_stops_the_job_with_sigttin() {
    let mut s = Session::start(&["run", "--image", image()]);
    s.shell();
    s.run("cat > /tmp/out &");
    let out = s.run("sleep 0.3; jobs");
    assert!(out.contains("Stopped"), "{out:?}");
    s.send(b"fg\r");
    s.expect("cat 1>/tmp/out");
    std::thread::sleep(Duration::from_millis(300));
    s.send(b"typed\r\x04");
    s.expect(PROMPT);
    assert!(s.run("cat /tmp/out").contains("\r\ntyped\r\n"));
    // With TOSTOP, a background write is SIGTTOU too.
    let out = s.run("stty tostop; (echo bg) & sleep 0.3; jobs; stty -tostop");
    assert!(out.contains("Stopped"), "{out:?}");
    s.send(b"\x1dq");
    assert_eq!(s.wait(), 130);
    s.assert_restored();
}

#[test]
fn the_terminal_is_restored_after_the_guest_exits_crashes_or_vkernel_is_killed() {
    // The shell exits: a normal end, with its status.
    let mut s = Session::start(&["run", "--image", image()]);
    s.shell();
    s.send(b"exit 3\r");
    assert_eq!(s.wait(), 3);
    s.assert_restored();
    // The guest kernel crashes (the test kernel's fault=null).
    let mut s = Session::start(&["run", "--test-kernel", "--append", "fault=null"]);
    let code = s.wait();
    assert_eq!(code, 2, "{}", String::from_utf8_lossy(&s.seen));
    s.assert_restored();
    // SIGTERM and SIGHUP to vkernel: restored, then the signal's own end.
    for sig in [libc::SIGTERM, libc::SIGHUP] {
        let mut s = Session::start(&["run", "--image", image()]);
        s.shell();
        // SAFETY: kill of our child.
        unsafe { libc::kill(s.child.id() as i32, sig) };
        assert_eq!(s.wait(), 128 + sig);
        s.assert_restored();
    }
    // The escape works while the guest reads nothing (a kernel waiting
    // in idle forever).
    let mut s = Session::start(&["run", "--test-kernel", "--append", "fault=idle"]);
    std::thread::sleep(Duration::from_millis(500));
    s.send(b"\x1dq");
    assert_eq!(s.wait(), 130);
    s.assert_restored();
}

#[test]
fn terminal_calls_behave_as_on_linux() {
    let dir = tempfile::tempdir().unwrap();
    let exe = common::c_program(dir.path(), "tty");
    let mut native = Session::spawn(Command::new(&exe));
    let code = native.wait();
    let want = native.checks();
    assert!(
        code == 0 && want.last().map(String::as_str) == Some("0 failed"),
        "natively (exit {code}, last {:?}):\n{}",
        want.last(),
        String::from_utf8_lossy(&native.seen)
    );
    let mut guest = Session::start(&["run", "--", exe.to_str().unwrap()]);
    let code = guest.wait();
    assert_eq!(
        guest.checks(),
        want,
        "in the guest (exit {code}):\n{}",
        String::from_utf8_lossy(&guest.seen)
    );
    assert_eq!(code, 0);
    guest.assert_restored();
}

/// Runs `tests/c/ttyin.c` on `s`, typing each case's bytes after its
/// "READY n"; returns the transcript from the first READY on.
fn typed_cases(s: &mut Session) -> String {
    let cases: [&[&[u8]]; 12] = [
        &[b"abc\x15one two\x17three fo\x7fx\r"],
        &[b"ab\x04"],
        &[b"\x04"],
        &[b"a\x01\t\x7f\x7fb\r"],
        &[b"secret\r"],
        &[b"abc\x7f\x15de\r"],
        &[b"a\x16\x03b\x12c\r"],
        &[b"x\x03y\r"],
        &[b"a\rb\n"],
        &[b"p\rq"],
        &[b"ab\x03", b"cd\r"],
        &[b"e\x1c", b"f\x1a", b"g\r"],
    ];
    for (i, chunks) in cases.iter().enumerate() {
        s.expect(&format!("READY {}", i + 1));
        std::thread::sleep(Duration::from_millis(100));
        for c in *chunks {
            s.send(c);
            std::thread::sleep(Duration::from_millis(200));
        }
        s.expect(&format!("GOT {}", i + 1));
    }
    s.expect("END");
    let all = String::from_utf8_lossy(&s.seen).into_owned();
    let from = all.find("READY 1").unwrap_or(0);
    let end = all.find("END").map_or(all.len(), |e| e + 3);
    all[from..end].to_owned()
}

#[test]
fn typed_input_is_edited_and_echoed_as_on_linux() {
    let dir = tempfile::tempdir().unwrap();
    let exe = common::c_program(dir.path(), "ttyin");
    let mut native = Session::spawn(Command::new(&exe));
    let want = typed_cases(&mut native);
    assert_eq!(native.wait(), 0);
    let mut guest = Session::start(&["run", "--", exe.to_str().unwrap()]);
    let got = typed_cases(&mut guest);
    assert_eq!(got, want, "guest vs Linux (left: guest)");
    assert_eq!(guest.wait(), 0);
    guest.assert_restored();
}
