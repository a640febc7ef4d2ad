//! The gdb stub (`vkernel run --gdb`), driven by the real `gdb` in batch
//! mode (and, for Ctrl-C and bad input, by a raw remote-protocol client):
//! breakpoints in the kernel and in a process, registers, single step,
//! memory, exit status, interrupt, detach, kill, and clients that go away.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The guest kernel ELF gdb reads symbols from: the real kernel, or the
/// test kernel (`hctest`) for the suite and the crash-on-purpose runs.
fn kernel_elf(test_kernel: bool) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/guest/x86_64-unknown-none/release")
        .join(if test_kernel { "hctest" } else { "kernel" })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A `vkernel run --gdb` child, killed when dropped.
struct Guest {
    child: Child,
    port: u16,
    /// Booted the test kernel (`--test-kernel`).
    test_kernel: bool,
    stderr: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
}

impl Guest {
    /// Starts the real kernel and waits for the "waiting for gdb" line.
    fn start(append: &str) -> Guest {
        Self::boot(false, append)
    }

    /// Starts the test kernel (`--test-kernel`) likewise.
    fn start_test(append: &str) -> Guest {
        Self::boot(true, append)
    }

    fn boot(test_kernel: bool, append: &str) -> Guest {
        let port = free_port();
        let gdb_addr = format!("127.0.0.1:{port}");
        let mut args = vec!["run", "--gdb", &gdb_addr, "--append", append];
        if test_kernel {
            args.push("--test-kernel");
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_vkernel"))
            .args(common::with_pmap(&args))
            .stdin(Stdio::piped()) // open, silent console input
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting vkernel");
        let err = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut g = Guest {
            child,
            port,
            test_kernel,
            stderr: rx,
            stderr_seen: Vec::new(),
        };
        let want = format!("vkernel: waiting for gdb on 127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !g.stderr_seen.iter().any(|l| l.contains(&want)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match g.stderr.recv_timeout(left) {
                Ok(l) => g.stderr_seen.push(l),
                Err(_) => panic!("no {want:?} line; stderr: {:?}", g.stderr_seen),
            }
        }
        g
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits for the guest to end (60 s at most): exit code, stdout,
    /// stderr.
    fn wait(mut self) -> (i32, String, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("waiting for vkernel") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("vkernel did not end; stderr: {:?}", self.stderr_seen);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_millis(500)) {
            self.stderr_seen.push(l);
        }
        (
            status.code().unwrap_or(-1),
            out,
            self.stderr_seen.join("\n"),
        )
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `gdb -batch` on the kernel ELF against `guest` with `cmds` after
/// `target remote`; returns (exit code, stdout + stderr).
fn gdb(guest: &Guest, cmds: &[&str]) -> (i32, String) {
    let mut c = Command::new("timeout");
    c.args(["60", "gdb", "-batch", "-nx"])
        .arg("-ex")
        .arg(format!("target remote {}", guest.addr()));
    for cmd in cmds {
        c.arg("-ex").arg(cmd);
    }
    c.arg(kernel_elf(guest.test_kernel));
    let out: Output = c
        .output()
        .expect("running gdb (is it installed? ci/setup.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The value of `name=0x...` printed by a `printf "name=%#lx\n", ...`.
fn hex_after(text: &str, name: &str) -> Vec<u64> {
    let key = format!("{name}=");
    text.lines()
        .filter_map(|l| l.strip_prefix(&key))
        .map(|v| u64::from_str_radix(v.trim().trim_start_matches("0x"), 16).unwrap_or(u64::MAX))
        .collect()
}

#[test]
fn break_at_kmain_backtrace_registers_step_static_and_exit_status() {
    let guest = Guest::start_test("exit=7");
    let (code, out) = gdb(
        &guest,
        &[
            "x/gx &VKERNEL_MAGIC",
            // At its first instruction: past the prologue, inlined code
            // (the clock) may already have used rdi.
            "break *kmain",
            "continue",
            "bt",
            "printf \"rdi=%#lx\\n\", $rdi",
            "printf \"pc=%#lx\\n\", $pc",
            "stepi",
            "printf \"pc=%#lx\\n\", $pc",
            "x/2i $pc",
            "continue",
        ],
    );
    assert_eq!(code, 0, "gdb failed:\n{out}");
    assert!(out.contains("Breakpoint 1, "), "no breakpoint stop:\n{out}");
    assert!(
        out.contains("hctest::kmain"),
        "no kmain in the backtrace:\n{out}"
    );
    assert!(
        out.contains("in _start ()"),
        "no _start in the backtrace:\n{out}"
    );
    assert_eq!(hex_after(&out, "rdi"), [0x1000], "rdi at kmain:\n{out}");
    let pcs = hex_after(&out, "pc");
    assert_eq!(pcs.len(), 2, "two pc values:\n{out}");
    assert!(
        pcs[1] > pcs[0] && pcs[1] - pcs[0] < 16,
        "stepi moved rip from {:#x} to {:#x}",
        pcs[0],
        pcs[1]
    );
    assert!(
        out.contains("<VKERNEL_MAGIC>:\t0x216c656e72656b76"),
        "static not read:\n{out}"
    );
    assert!(
        out.contains("[Inferior 1 (process 1) exited with code 07]"),
        "exit not reported:\n{out}"
    );
    let (status, stdout, _) = guest.wait();
    assert_eq!(status, 7);
    assert!(stdout.contains("kernel: exiting with status 7"));
}

#[test]
fn breakpoint_inside_a_user_process_then_step_and_run_to_the_end() {
    // `usercode` routines are copied to 0x400000 in each test process; the
    // first process the suite runs executes `u_syscall` (rax = rdi).
    let guest = Guest::start_test("test=hypercalls");
    let (code, out) = gdb(
        &guest,
        &[
            "break *(0x400000 + (long)&u_syscall - (long)&usercode_start)",
            "continue",
            "printf \"pc=%#lx\\n\", $pc",
            "printf \"cs=%#lx\\n\", $cs",
            "printf \"rdi=%#lx\\n\", $rdi",
            "printf \"rsp=%#lx\\n\", $rsp",
            "x/2i $pc",
            "stepi",
            "printf \"pc=%#lx\\n\", $pc",
            "printf \"rax=%#lx\\n\", $rax",
            "printf \"eflags=%#lx\\n\", $eflags",
            "delete",
            "continue",
        ],
    );
    assert_eq!(code, 0, "gdb failed:\n{out}");
    assert!(
        out.contains("Breakpoint 1, 0x0000000000400000 in ?? ()"),
        "no stop in the process:\n{out}"
    );
    let pcs = hex_after(&out, "pc");
    assert_eq!(pcs, [0x400000, 0x400003], "pc in the process:\n{out}");
    assert_eq!(hex_after(&out, "cs"), [0x23], "ring-3 cs:\n{out}");
    let rsp = hex_after(&out, "rsp");
    assert!(
        rsp.len() == 1 && (0x7f_0000..0x80_0000).contains(&rsp[0]),
        "the process's stack:\n{out}"
    );
    let rdi = hex_after(&out, "rdi");
    assert_eq!(
        hex_after(&out, "rax"),
        rdi,
        "mov rax, rdi was stepped:\n{out}"
    );
    let fl = hex_after(&out, "eflags");
    assert!(fl.len() == 1 && fl[0] & 0x100 == 0, "TF shown:\n{out}");
    assert!(out.contains("mov    %rdi,%rax"), "disassembly:\n{out}");
    assert!(
        out.contains("[Inferior 1 (process 1) exited normally]"),
        "exit not reported:\n{out}"
    );
    // The whole suite still passes with the debugger in the way, including
    // the process's own int3 (T_BPTFLT) and the syscall frame's rflags.
    let (status, stdout, _) = guest.wait();
    assert!(stdout.contains(" passed, 0 failed"), "suite:\n{stdout}");
    assert_eq!(status, 0);
}

#[test]
fn stepping_over_a_process_syscall_lands_in_the_kernel_without_tf() {
    let guest = Guest::start_test("test=hypercalls");
    let (code, out) = gdb(
        &guest,
        &[
            "break *(0x400000 + (long)&u_syscall - (long)&usercode_start)",
            "continue",
            "delete",
            "stepi",
            "stepi",
            "printf \"pc=%#lx\\n\", $pc",
            "printf \"eflags=%#lx\\n\", $eflags",
            "bt",
            "continue",
        ],
    );
    assert_eq!(code, 0, "gdb failed:\n{out}");
    let pc = hex_after(&out, "pc");
    assert!(
        pc.len() == 1 && (0x20_0000..0x40_0000).contains(&pc[0]),
        "back in the kernel after the syscall:\n{out}"
    );
    let fl = hex_after(&out, "eflags");
    assert!(fl.len() == 1 && fl[0] & 0x100 == 0, "TF leaked:\n{out}");
    assert!(out.contains("hctest::suite"), "kernel backtrace:\n{out}");
    assert!(out.contains("exited normally]"), "exit:\n{out}");
    let (status, stdout, _) = guest.wait();
    assert!(stdout.contains(" passed, 0 failed"), "suite:\n{stdout}");
    assert_eq!(status, 0);
}

#[test]
fn kill_from_gdb_stops_the_guest() {
    let guest = Guest::start("exit=7");
    let (code, out) = gdb(&guest, &["break kmain", "continue", "kill"]);
    assert_eq!(code, 0, "gdb failed:\n{out}");
    let (status, stdout, stderr) = guest.wait();
    assert_eq!(status, 2, "stderr:\n{stderr}");
    assert!(stderr.contains("vkernel: gdb killed the guest"), "{stderr}");
    assert!(!stdout.contains("exiting with status"), "{stdout}");
}

#[test]
fn a_client_that_dies_mid_run_leaves_the_guest_running_to_its_exit() {
    let guest = Guest::start("exit=5");
    // gdb stops at kmain, then is killed outright (no detach packet).
    let (_, out) = gdb(&guest, &["break kmain", "continue", "shell kill -9 $PPID"]);
    assert!(out.contains("Breakpoint 1, "), "no stop at kmain:\n{out}");
    let (status, stdout, stderr) = guest.wait();
    assert_eq!(status, 5, "stderr:\n{stderr}");
    assert!(stdout.contains("kernel: exiting with status 5"));
    assert!(stderr.contains("gdb session ended"), "{stderr}");
}

#[test]
fn detach_lets_the_guest_run_on() {
    let guest = Guest::start("exit=4");
    let (code, out) = gdb(&guest, &["break kmain", "continue", "detach"]);
    assert_eq!(code, 0, "gdb failed:\n{out}");
    assert!(out.contains("[Inferior 1 (process 1) detached]"), "{out}");
    let (status, stdout, _) = guest.wait();
    assert_eq!(status, 4);
    assert!(stdout.contains("kernel: exiting with status 4"));
}

/// A raw remote-protocol client.
struct Rsp {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Rsp {
    fn connect(addr: &str) -> Rsp {
        let s = TcpStream::connect(addr).expect("connecting to the stub");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Rsp { s, buf: Vec::new() }
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("writing to the stub");
    }

    fn send(&mut self, body: &str) {
        let sum = body.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        self.raw(format!("${body}#{sum:02x}").as_bytes());
    }

    /// The next packet's body (acknowledging it).
    fn recv(&mut self) -> String {
        loop {
            if let Some(start) = self.buf.iter().position(|&b| b == b'$') {
                if let Some(hash) = self.buf[start..].iter().position(|&b| b == b'#') {
                    let end = start + hash + 3;
                    if self.buf.len() >= end {
                        let body = unrle(&self.buf[start + 1..start + hash]);
                        self.buf.drain(..end);
                        self.raw(b"+");
                        return body;
                    }
                }
            }
            let mut b = [0u8; 512];
            let n = self.s.read(&mut b).expect("reading from the stub");
            assert!(n > 0, "the stub closed the connection");
            self.buf.extend_from_slice(&b[..n]);
        }
    }
}

/// Undoes the protocol's run-length encoding (`c*N`: N - 29 more `c`).
fn unrle(body: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'*' && i + 1 < body.len() {
            let last = *out.last().unwrap_or(&b'0');
            out.extend(std::iter::repeat_n(last, body[i + 1] as usize - 29));
            i += 2;
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into()
}

#[test]
fn ctrl_c_interrupts_a_spinning_guest() {
    let guest = Guest::start_test("fault=spin");
    let mut c = Rsp::connect(&guest.addr());
    c.send("?");
    let first = c.recv();
    assert!(first.starts_with('S') || first.starts_with('T'), "{first}");
    c.send("c");
    std::thread::sleep(Duration::from_millis(300));
    c.raw(&[0x03]);
    let stop = c.recv();
    assert!(
        stop.starts_with("S02") || stop.starts_with("T02"),
        "stop reply {stop:?}"
    );
    // It was really running: the spin counter moved.
    let sym = Command::new("gdb")
        .args([
            "-batch",
            "-nx",
            "-ex",
            "printf \"addr=%#lx\\n\", &SPIN_COUNT",
        ])
        .arg(kernel_elf(guest.test_kernel))
        .output()
        .expect("gdb");
    let addr = hex_after(&String::from_utf8_lossy(&sym.stdout), "addr");
    assert_eq!(addr.len(), 1, "{sym:?}");
    c.send(&format!("m{:x},8", addr[0]));
    let count = c.recv();
    assert!(count.len() == 16 && count != "0000000000000000", "{count}");
    c.send("k");
    std::thread::sleep(Duration::from_millis(200));
    let (status, _, stderr) = guest.wait();
    assert_eq!(status, 2, "{stderr}");
}

#[test]
fn malformed_packets_and_a_failed_connection_do_not_hurt() {
    let guest = Guest::start("exit=6");
    // A client that connects and leaves at once: the guest keeps waiting.
    drop(TcpStream::connect(guest.addr()).unwrap());
    let mut c = Rsp::connect(&guest.addr());
    c.raw(b"garbage without a packet");
    c.raw(b"$g#00"); // bad checksum: refused with '-'
    c.send("Qno-such-packet");
    assert_eq!(c.recv(), "", "unknown packets get an empty reply");
    c.send("m0,8"); // page 0 is not mapped: an error, not a crash
    assert!(c.recv().starts_with('E'));
    c.send("?");
    let stop = c.recv();
    assert!(stop.starts_with('S') || stop.starts_with('T'), "{stop}");
    c.send("D");
    assert_eq!(c.recv(), "OK");
    let (status, stdout, stderr) = guest.wait();
    assert_eq!(status, 6, "{stderr}");
    assert!(stdout.contains("kernel: exiting with status 6"));
}

#[test]
fn the_suite_passes_with_a_process_breakpoint_hit_and_stepped_over_every_time() {
    // gdb stops at every `u_store_load` run (several processes), lifts the
    // int3, steps the original store with TF (a demand fault on the way),
    // plants it again and continues. With the breakpoint armed in every
    // process, the processes' own int3 (T_BPTFLT), the syscall frames and
    // everything else must look exactly as without gdb.
    let guest = Guest::start_test("test=hypercalls");
    let (code, out) = gdb(
        &guest,
        &[
            "break *(0x400000 + (long)&u_store_load - (long)&usercode_start)",
            "ignore 1 1000000",
            "continue",
            "info breakpoints",
        ],
    );
    assert_eq!(code, 0, "gdb failed:\n{out}");
    assert!(out.contains("exited normally]"), "exit:\n{out}");
    let hits: u32 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("breakpoint already hit "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(hits >= 3, "hit {hits} times:\n{out}");
    let (status, stdout, _) = guest.wait();
    assert!(stdout.contains(" passed, 0 failed"), "suite:\n{stdout}");
    assert!(stdout.contains("ok ") && stdout.contains("int3 -> T_BPTFLT"));
    assert!(!stdout.contains("not ok"), "{stdout}");
    assert_eq!(status, 0);
}

#[test]
fn a_new_client_attaches_to_a_guest_that_runs_on_after_the_first_left() {
    let guest = Guest::start_test("fault=spin");
    let mut first = Rsp::connect(&guest.addr());
    first.send("c");
    std::thread::sleep(Duration::from_millis(200));
    drop(first); // gone without a word: the guest spins on
    std::thread::sleep(Duration::from_millis(200));
    let mut second = Rsp::connect(&guest.addr());
    second.send("?");
    let stop = second.recv();
    assert!(stop.starts_with('S') || stop.starts_with('T'), "{stop}");
    second.send("g");
    let regs = second.recv();
    // rip (bytes 0x80..0x88 of the g packet) is inside the kernel's text.
    let rip = u64::from_str_radix(&regs[0x100..0x110], 16)
        .map(u64::swap_bytes)
        .unwrap_or(0);
    assert!((0x20_0000..0x40_0000).contains(&rip), "rip {rip:#x}");
    second.send("k");
    let (status, _, stderr) = guest.wait();
    assert_eq!(status, 2, "{stderr}");
    assert!(stderr.contains("gdb session ended"), "{stderr}");
}

#[test]
fn a_kernel_crash_stops_in_gdb_at_the_faulting_instruction() {
    let guest = Guest::start_test("fault=ud");
    let (code, out) = gdb(&guest, &["continue", "bt", "x/i $pc", "continue"]);
    assert_eq!(code, 0, "gdb failed:\n{out}");
    assert!(
        out.contains("Program received signal SIGILL"),
        "no stop at the crash:\n{out}"
    );
    assert!(out.contains("hctest::selftest::fault"), "backtrace:\n{out}");
    assert!(out.contains("ud2"), "faulting instruction:\n{out}");
    assert!(
        out.contains("Program terminated with signal SIGILL"),
        "end not reported:\n{out}"
    );
    let (status, _, stderr) = guest.wait();
    assert_eq!(status, 2);
    assert!(stderr.contains("guest kernel crashed"), "{stderr}");
}

#[test]
fn ctrl_c_interrupts_a_guest_waiting_for_console_input() {
    let guest = Guest::start_test("fault=idle");
    let mut c = Rsp::connect(&guest.addr());
    c.send("c");
    std::thread::sleep(Duration::from_millis(300));
    c.raw(&[0x03]);
    let stop = c.recv();
    assert!(
        stop.starts_with("S02") || stop.starts_with("T02"),
        "stop reply {stop:?}"
    );
    c.send("k");
    let (status, _, stderr) = guest.wait();
    assert_eq!(status, 2, "{stderr}");
}

/// The stub has no authentication: `--gdb` on an address that is not
/// loopback is refused (exit 1, one line) unless `--gdb-allow-remote` is
/// given, and then it listens there. Costs well under a second.
#[test]
fn remote_addresses_need_gdb_allow_remote() {
    let addr = format!("0.0.0.0:{}", free_port());
    let r = common::vkernel(&["run", "--test-kernel", "--append", "exit=3", "--gdb", &addr]);
    r.expect_code(1)
        .stderr_has("is not a loopback address")
        .stderr_has("--gdb-allow-remote");
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    // Loopback by name is loopback.
    let local = format!("localhost:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_vkernel"))
        .args([
            "run",
            "--test-kernel",
            "--append",
            "exit=3",
            "--gdb",
            &local,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting vkernel");
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.contains("waiting for gdb on 127.0.0.1:")
            || line.contains("waiting for gdb on [::1]:"),
        "{line}"
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_vkernel"))
        .args(["run", "--test-kernel", "--append", "exit=3", "--gdb", &addr])
        .arg("--gdb-allow-remote")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting vkernel");
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.contains(&format!("waiting for gdb on {addr}")),
        "{line}"
    );
}
