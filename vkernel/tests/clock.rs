//! Time without exits (#17): the guest kernel reads the clock page the
//! host keeps (pvclock layout, the TSC) instead of a hypercall per
//! reading; monotonic never goes back across processes, slices and
//! sleeps; realtime follows the host's; `--clock hypercall` (what a host
//! without an invariant TSC gets) still runs everything.

mod common;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use common::{c_program, stats_hypercalls, vkernel};

fn field(out: &str, name: &str) -> i64 {
    out.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{out}"))
}

#[test]
fn monotonic_never_goes_back_and_realtime_follows_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "clock");
    for source in ["tsc", "hypercall"] {
        let t0 = Instant::now();
        let r = vkernel(&[
            "run",
            "--clock",
            source,
            "--",
            exe.to_str().unwrap(),
            "loop",
            "2000",
        ]);
        let host_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        let host_elapsed = t0.elapsed().as_nanos() as i64;
        r.expect_code(0);
        let out = &r.stdout;
        assert_eq!(field(out, "backwards"), 0, "{source}: {out}");
        let mono = field(out, "monotonic_elapsed_ns");
        let rt = field(out, "realtime_elapsed_ns");
        // 2 s of guest time inside the host's run of it.
        assert!(
            (2_000_000_000..=host_elapsed).contains(&mono),
            "{source}: {mono} ns in a {host_elapsed} ns run"
        );
        // Both clocks advance alike (no drift between them over 2 s) ...
        assert!((mono - rt).abs() < 1_000_000, "{source}: {mono} vs {rt}");
        // ... and realtime is the host's (the guest read it just before
        // exiting).
        let lag = host_now - field(out, "realtime_now_ns");
        assert!(
            (0..200_000_000).contains(&lag),
            "{source}: realtime {lag} ns off"
        );
    }
}

#[test]
fn monotonic_survives_the_vkernel_process_being_suspended() {
    // SIGSTOP the whole vkernel process for half a second while its
    // processes read the clock: the guest's monotonic time never goes
    // back, and realtime still follows the host's afterwards.
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "clock");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_vkernel"))
        .args(["run", "--", exe.to_str().unwrap(), "loop", "2000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    std::thread::sleep(std::time::Duration::from_millis(700));
    // SAFETY: signals to our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let out = child.wait_with_output().unwrap();
    let host_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(field(&stdout, "backwards"), 0, "{stdout}");
    let lag = host_now - field(&stdout, "realtime_now_ns");
    assert!(
        (0..200_000_000).contains(&lag),
        "realtime {lag} ns off after a suspend"
    );
}

#[test]
fn cpu_time_is_accounted_per_process_and_for_reaped_children() {
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "clock");
    let r = vkernel(&["run", "--", exe.to_str().unwrap(), "cpu", "300000000"]);
    r.expect_code(0);
    let out = &r.stdout;
    let (wall, cpu) = (field(out, "wall_ns"), field(out, "cpu_ns"));
    // A busy loop's CPU time is its wall time, less what the host and
    // the other runnable processes took (none in the guest; on the host,
    // the other tests of this binary run at once on two cores: a fifth
    // is the floor, never 0).
    assert!(
        cpu > wall / 5 && cpu <= wall + 5_000_000,
        "cpu {cpu} ns for a {wall} ns loop"
    );
    assert!(field(out, "self_utime_ns") >= cpu * 9 / 10, "{out}");
    let child = field(out, "child_utime_ns");
    assert!(child > wall / 5, "the child's loop: {child} ns\n{out}");
    assert_eq!(field(out, "children_utime_ns"), child, "{out}");
    assert_eq!(field(out, "times_cutime"), child / 10_000_000, "{out}");
}

#[test]
fn glibc_reads_the_time_through_the_vdso_without_exits() {
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "clock");
    let native = std::process::Command::new(&exe)
        .args(["vdso", "100000"])
        .output()
        .unwrap();
    let native = String::from_utf8_lossy(&native.stdout).to_string();
    for pmap in ["host", "guest"] {
        let r = vkernel(&[
            "run",
            "--pmap",
            pmap,
            "--stats",
            "--",
            exe.to_str().unwrap(),
            "vdso",
            "100000",
        ]);
        r.expect_code(0);
        let out = &r.stdout;
        for (name, want) in [
            ("ehdr", 1),
            ("maps", 1),
            ("time_vs_gettimeofday", 0),
            ("vvar_write_segv", 1),
            ("syscall_after_unmap", 1),
        ] {
            assert_eq!(
                field(out, name),
                want,
                "{pmap}: {name}\n{out}\n{}",
                r.stderr
            );
            assert_eq!(field(&native, name), want, "natively: {name}\n{native}");
        }
        // As Linux: the data page can never be made writable.
        assert_eq!(field(out, "vvar_mprotect_write"), -1, "{pmap}: {out}");
        // 100,000 readings and a few dozen hypercalls in all: none per
        // reading.
        let hc = stats_hypercalls(&r.stderr);
        assert!(hc < 1000, "{pmap}: {hc} hypercalls for 100000 readings");
        eprintln!(
            "clock_gettime per call: {} ns in vkernel (pmap={pmap}), {} ns natively",
            field(out, "per_call_ns"),
            field(&native, "per_call_ns")
        );
    }
}

#[test]
fn a_static_musl_program_takes_the_vdso_path_too() {
    // musl finds the vDSO in a static program as glibc does (ci/setup.sh
    // installs musl-tools).
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("clock-musl");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/clock.c");
    let built = std::process::Command::new("musl-gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("running musl-gcc (ci/setup.sh installs musl-tools)");
    assert!(built.success(), "musl-gcc failed");
    let r = vkernel(&[
        "run",
        "--stats",
        "--",
        exe.to_str().unwrap(),
        "vdso",
        "100000",
    ]);
    r.expect_code(0);
    assert_eq!(field(&r.stdout, "ehdr"), 1, "{}", r.stdout);
    assert_eq!(field(&r.stdout, "vvar_write_segv"), 1, "{}", r.stdout);
    let hc = stats_hypercalls(&r.stderr);
    assert!(hc < 1000, "{hc} hypercalls for 100000 readings");
}

#[test]
fn reading_the_clock_costs_no_hypercall_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "clock");
    let hypercalls = |source: &str| {
        let r = vkernel(&[
            "run",
            "--stats",
            "--clock",
            source,
            "--",
            exe.to_str().unwrap(),
            "calls",
            "5000",
        ]);
        r.expect_code(0).stdout_has("calls done");
        stats_hypercalls(&r.stderr)
    };
    let (tsc, hc) = (hypercalls("tsc"), hypercalls("hypercall"));
    // 5000 clock_gettime system calls: one clock hypercall each fewer.
    assert!(hc - tsc >= 4500, "tsc {tsc}, hypercall {hc}");
}
