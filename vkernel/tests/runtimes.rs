//! Language runtimes on vkernel's threads (#15): a static Go program
//! (goroutines on several OS threads, channels, timers, a mutex,
//! GOMAXPROCS, preemption of a call-free loop by SIGURG, a panic's stack
//! trace) and a static Rust program (std::thread, mpsc, Arc<Mutex<_>>,
//! Condvar, Barrier, scoped threads, park, a panicking thread). Each is
//! built from source here, run natively, and must print the same in the
//! guest. A Go HTTP server and client over loopback TCP (net/http, and
//! io.Copy between sockets, which splices) the same way. ci/setup.sh
//! installs Debian's golang-go.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{stats_hypercalls, vkernel};

fn source(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(rel)
}

/// Builds the Go program with `CGO_ENABLED=0` (a static binary).
fn go_program(dir: &Path) -> PathBuf {
    go_build(dir, "threads")
}

/// Builds Go program `tests/go/NAME` into `dir`.
fn go_build(dir: &Path, name: &str) -> PathBuf {
    let exe = dir.join(format!("go{name}"));
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-build");
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&exe)
        .arg(".")
        .current_dir(source(&format!("go/{name}")))
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", &cache)
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .output()
        .expect("running go (ci/setup.sh installs golang-go)");
    assert!(
        out.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

#[test]
fn go_program_runs_as_on_linux() {
    let dir = tempfile::tempdir().unwrap();
    let exe = go_program(dir.path());
    let native = Command::new(&exe).output().unwrap();
    assert!(native.status.success(), "natively: {native:?}");
    let native_out = String::from_utf8_lossy(&native.stdout).into_owned();
    assert!(
        native_out.contains("preempted a tight loop"),
        "{native_out}"
    );
    let r = vkernel(&["run", "--", exe.to_str().unwrap()]);
    r.expect_code(0);
    assert_eq!(r.stdout, native_out, "stderr:\n{}", r.stderr);
    assert!(!r.stderr.contains("not implemented"), "{}", r.stderr);

    // A panic: exit status 2 and the goroutine's stack trace.
    let r = vkernel(&["run", "--", exe.to_str().unwrap(), "panic"]);
    r.expect_code(2)
        .stderr_has("panic: assignment to entry in nil map")
        .stderr_has("goroutine 1 [running]:")
        .stderr_has("main.crash(")
        .stderr_has("main.main()");
}

#[test]
fn go_reads_the_time_through_the_vdso() {
    // A million time.Now() calls and a few hundred hypercalls in all:
    // Go's runtime found the vDSO (AT_SYSINFO_EHDR) by itself.
    let dir = tempfile::tempdir().unwrap();
    let exe = go_program(dir.path());
    let r = vkernel(&["run", "--stats", "--", exe.to_str().unwrap(), "clock"]);
    r.expect_code(0).stdout_has("clock readings going back: 0");
    let hypercalls = stats_hypercalls(&r.stderr);
    assert!(
        hypercalls < 100_000,
        "{hypercalls} hypercalls for a million readings"
    );
}

#[test]
fn rust_std_threads_run_as_on_linux() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("rsthreads");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
        ])
        .args(["--target", "x86_64-unknown-linux-gnu", "-o"])
        .arg(&exe)
        .arg(source("rust/std_threads.rs"))
        .output()
        .expect("running rustc");
    assert!(
        out.status.success(),
        "rustc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let native = Command::new(&exe)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(native.status.success(), "natively: {native:?}");
    let native_out = String::from_utf8_lossy(&native.stdout).into_owned();
    assert!(native_out.contains("panicked thread joined as error: true"));
    let r = vkernel(&["run", "--", exe.to_str().unwrap()]);
    r.expect_code(0);
    assert_eq!(r.stdout, native_out, "stderr:\n{}", r.stderr);
    r.stderr_has("thread 'doomed'").stderr_has("on purpose");
    assert!(!r.stderr.contains("not implemented"), "{}", r.stderr);
}

#[test]
fn go_net_http_over_loopback_runs_as_on_linux() {
    let dir = tempfile::tempdir().unwrap();
    let exe = go_build(dir.path(), "nethttp");
    let native = Command::new(&exe).output().unwrap();
    assert!(native.status.success(), "natively: {native:?}");
    let native_out = String::from_utf8_lossy(&native.stdout).into_owned();
    assert_eq!(native_out, "200 go says /x\n200 go says /y\necho6\n");
    let r = vkernel(&["run", "--memory", "256", "--", exe.to_str().unwrap()]);
    r.expect_code(0);
    assert_eq!(r.stdout, native_out, "stderr:\n{}", r.stderr);
    assert!(!r.stderr.contains("not implemented"), "{}", r.stderr);
}
