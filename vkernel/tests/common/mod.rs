//! Helpers for tests that run the real `vkernel` binary on KVM.
#![allow(dead_code)]

use std::process::{Command, Output};

/// `args` for a run under the pmap `VKERNEL_TEST_PMAP` names (`host` or
/// `guest`; unset: the default): CI runs the process tests under both.
/// Runs that choose a pmap themselves keep theirs.
pub fn with_pmap(args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let chosen = args.iter().any(|a| *a == "--pmap" || a.contains("pmap="));
    if let (Ok(pmap), false) = (std::env::var("VKERNEL_TEST_PMAP"), chosen) {
        match v.first().map(String::as_str) {
            None => v = vec!["run".into(), "--pmap".into(), pmap],
            Some("run") => {
                v.insert(1, "--pmap".into());
                v.insert(2, pmap);
            }
            _ => {}
        }
    }
    v
}

/// Runs `vkernel` with `args`, with a timeout so a hang fails the test.
pub fn vkernel(args: &[&str]) -> Run {
    let out = Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_vkernel"))
        .args(with_pmap(args))
        .output()
        .expect("running vkernel");
    Run::from(out)
}

/// What a run printed and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code {} (wanted {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// Panics unless stdout contains `s`.
    pub fn stdout_has(&self, s: &str) -> &Self {
        assert!(
            self.stdout.contains(s),
            "stdout lacks {s:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics unless stderr contains `s`.
    pub fn stderr_has(&self, s: &str) -> &Self {
        assert!(
            self.stderr.contains(s),
            "stderr lacks {s:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `vkernel` with `args` and `input` on its stdin.
pub fn vkernel_with_input(args: &[&str], input: &[u8]) -> Run {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_vkernel"))
        .args(with_pmap(args))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running vkernel");
    child.stdin.take().unwrap().write_all(input).unwrap();
    Run::from(child.wait_with_output().unwrap())
}

/// Runs `/bin/systest ARGS` of the built-in image as init.
pub fn systest(args: &str) -> Run {
    vkernel(&["run", "--append", &format!("init=/bin/systest -- {args}")])
}

/// Path of a built guest user program (the build script builds them here).
pub fn guest_program(name: &str) -> String {
    format!(
        "{}/../target/guest/x86_64-unknown-none/release/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

impl Run {
    /// Panics unless the run exited 0 and no check printed FAIL.
    pub fn all_ok(&self) -> &Self {
        assert!(
            !self.stdout.contains("FAIL"),
            "a check failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self.expect_code(0)
    }
}

/// Builds `vkernel/tests/c/NAME.c` with `gcc -static -O2` into `dir`.
pub fn c_program(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let src = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(format!("{name}.c"));
    let exe = dir.join(name);
    let out = std::process::Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("running gcc (ci/setup.sh installs gcc and libc6-dev)");
    assert!(
        out.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Builds C test program `name` (tests/c/NAME.c, which prints `ok`/`FAIL`
/// lines and `N failed`), checks that it passes natively (Linux is the
/// model: the program checks Linux's own behaviour), then runs it in the
/// guest and checks it passes there too. The guest's run, for more checks.
#[allow(dead_code)] // Not every test binary uses every helper.
pub fn c_checks_pass_natively_and_in_the_guest(name: &str) -> Run {
    c_checks_pass_natively_and_in_the_guest_with(name, &[], &[])
}

/// [`c_checks_pass_natively_and_in_the_guest`] with arguments for the
/// program and options for `vkernel run`.
#[allow(dead_code)] // Not every test binary uses every helper.
pub fn c_checks_pass_natively_and_in_the_guest_with(
    name: &str,
    args: &[&str],
    options: &[&str],
) -> Run {
    let dir = tempfile::TempDir::new().unwrap();
    let exe = c_program(dir.path(), name);
    let work = tempfile::TempDir::new().unwrap();
    let native = Command::new(&exe)
        .args(args)
        .current_dir(work.path())
        .output()
        .unwrap();
    let native_out = String::from_utf8_lossy(&native.stdout);
    assert!(
        native_out.contains("\n0 failed"),
        "{name} natively:\n{native_out}"
    );
    let mut run = vec!["run"];
    run.extend_from_slice(options);
    run.extend_from_slice(&["--", exe.to_str().unwrap()]);
    run.extend_from_slice(args);
    let r = vkernel(&run);
    assert!(!r.stdout.contains("FAIL"), "{}\n{}", r.stdout, r.stderr);
    r.expect_code(0).stdout_has("\n0 failed");
    r
}

/// Runs `args` natively and in the guest over the host's root
/// (`--rootfs /`): both must succeed with the same output, which is
/// returned.
#[allow(dead_code)] // Not every test binary uses every helper.
pub fn same_as_host(args: &[&str]) -> String {
    let native = Command::new(args[0]).args(&args[1..]).output().unwrap();
    let native_out = String::from_utf8_lossy(&native.stdout).into_owned();
    assert!(
        native.status.success(),
        "{args:?} natively: {}",
        String::from_utf8_lossy(&native.stderr)
    );
    let mut run = vec!["run", "--rootfs", "/", "--"];
    run.extend_from_slice(args);
    let r = vkernel(&run);
    r.expect_code(0);
    assert_eq!(r.stdout, native_out, "{args:?}: {}", r.stderr);
    native_out
}

/// The `N hypercalls` of a `vkernel run --stats` line on stderr.
#[allow(dead_code)] // Not every test binary uses every helper.
pub fn stats_hypercalls(stderr: &str) -> i64 {
    stats_count(stderr, " hypercalls")
}

/// The `N exits` of a `vkernel run --stats` line on stderr.
#[allow(dead_code)] // Not every test binary uses every helper.
pub fn stats_exits(stderr: &str) -> i64 {
    stats_count(stderr, " exits,")
}

/// The number just before the first `what` on stderr (`" slice ends"`,
/// `" faults resolved"`, ...).
#[allow(dead_code)] // Not every test binary uses every helper.
pub fn stats_count(stderr: &str, what: &str) -> i64 {
    let at = stderr
        .find(what)
        .unwrap_or_else(|| panic!("no{what} in --stats output: {stderr}"));
    let n: String = stderr[..at]
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    n.chars().rev().collect::<String>().parse().unwrap()
}

/// How many times hypercall `name` was made, from the per-call list of a
/// `vkernel run --stats` run's stderr (`... name COUNT MS ...`; 0 when the
/// call was never made).
#[allow(dead_code)] // Not every test binary uses every helper.
pub fn stats_call_count(stderr: &str, name: &str) -> u64 {
    let list = stderr
        .split("hypercalls by call (count, host ms):")
        .nth(1)
        .expect("--stats per-call line");
    let mut words = list.split([' ', ';']);
    while let Some(w) = words.next() {
        if w == name {
            return words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        }
    }
    0
}
