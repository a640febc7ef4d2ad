//! Programs no one wrote for vkernel: small C programs built at test time
//! with the machine's `gcc -static -O2` (glibc) run in the guest with the
//! same stdout and exit status as natively on the host.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const MALLOC_PRINTF: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    printf("hello from C, argc=%d\n", argc);
    for (int i = 1; i < argc; i++) printf("arg %d: %s\n", i, argv[i]);
    size_t sizes[] = {16, 1000, 64 * 1024, 200 * 1024, 4 << 20};
    unsigned long sum = 0;
    for (int i = 0; i < 5; i++) {
        unsigned char *p = malloc(sizes[i]);
        if (!p) { printf("malloc failed\n"); return 2; }
        memset(p, i + 1, sizes[i]);
        for (size_t j = 0; j < sizes[i]; j += 4096) sum += p[j];
        sum += p[sizes[i] - 1];
        if (i % 2) free(p);
    }
    char *s = malloc(10);
    s = realloc(s, 300000);
    strcpy(s, "realloc ok");
    printf("%s, sum=%lu\n", s, sum);
    fprintf(stderr, "to stderr\n");
    return argc > 2 ? atoi(argv[2]) : 0;
}
"#;

const FORK_WAIT_SLEEP: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>
#include <time.h>
int g = 1;
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int k = 0; k < 3; k++) {
        pid_t p = fork();
        if (p == 0) { g = 10 + k; printf("child %d: g=%d\n", k, g); exit(k + 3); }
        int st;
        if (waitpid(p, &st, 0) != p) return 9;
        printf("parent: g=%d, child %d status %d\n", g, k, WEXITSTATUS(st));
    }
    struct timespec a, b, d = {0, 50000000};
    clock_gettime(CLOCK_MONOTONIC, &a);
    nanosleep(&d, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    printf("slept at least 50 ms: %s\n", ms >= 50 ? "yes" : "no");
    return 5;
}
"#;

const UPPERCASE_STDIN: &str = r#"
#include <ctype.h>
#include <stdio.h>
int main(void) {
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, stdin)) {
        for (char *c = line; *c; c++) *c = toupper((unsigned char)*c);
        printf("%d: %s", ++n, line);
    }
    printf("%d lines\n", n);
    return n;
}
"#;

/// Compiles `src` with gcc and `flags` into `dir`; the executable's path.
fn gcc(dir: &Path, name: &str, src: &str, flags: &[&str]) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let exe = dir.join(name);
    let out = Command::new("gcc")
        .args(flags)
        .arg("-O2")
        .arg("-o")
        .arg(&exe)
        .arg(&c)
        .output()
        .expect("running gcc (ci/setup.sh installs gcc and libc6-dev)");
    assert!(
        out.status.success(),
        "gcc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Runs `exe args` natively and in the guest; both must agree.
fn same_as_native(exe: &Path, args: &[&str]) -> common::Run {
    same_as_native_with_input(exe, args, b"")
}

/// Runs `exe args` with `input` on stdin natively and in the guest.
fn same_as_native_with_input(exe: &Path, args: &[&str], input: &[u8]) -> common::Run {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let native = child.wait_with_output().unwrap();
    let native_code = native.status.code().unwrap();
    let exe_s = exe.to_str().unwrap();
    let mut vargs = vec!["run", "--", exe_s];
    vargs.extend_from_slice(args);
    let guest = common::vkernel_with_input(&vargs, input);
    assert_eq!(
        guest.stdout,
        String::from_utf8_lossy(&native.stdout),
        "stdout differs\n--- guest stderr\n{}",
        guest.stderr
    );
    guest.expect_code(native_code);
    guest
}

#[test]
fn static_glibc_program_prints_allocates_and_exits_like_natively() {
    let dir = tempfile::tempdir().unwrap();
    let exe = gcc(dir.path(), "malloc", MALLOC_PRINTF, &["-static"]);
    same_as_native(&exe, &["first", "42"])
        .expect_code(42)
        .stdout_has("realloc ok")
        .stderr_has("to stderr");
}

#[test]
fn static_pie_glibc_program_runs_like_natively() {
    let dir = tempfile::tempdir().unwrap();
    let exe = gcc(dir.path(), "malloc-pie", MALLOC_PRINTF, &["-static-pie"]);
    same_as_native(&exe, &["x", "7"]).expect_code(7);
}

#[test]
fn glibc_fork_wait_and_nanosleep_run_like_natively() {
    let dir = tempfile::tempdir().unwrap();
    let exe = gcc(dir.path(), "fork", FORK_WAIT_SLEEP, &["-static"]);
    same_as_native(&exe, &[])
        .expect_code(5)
        .stdout_has("parent: g=1, child 2 status 5")
        .stdout_has("slept at least 50 ms: yes");
}

#[test]
fn dynamic_executable_without_its_loader_says_so() {
    // Packed alone, the program has no ld.so beside it (tests/hostfs.rs
    // runs dynamic programs from the host's root).
    let dir = tempfile::tempdir().unwrap();
    let exe = gcc(dir.path(), "dynamic", MALLOC_PRINTF, &[]);
    let r = common::vkernel(&["run", "--", exe.to_str().unwrap()]);
    r.expect_code(127);
    r.stderr_has("its interpreter (PT_INTERP, the dynamic loader) is not in the guest's root");
}

#[test]
fn glibc_stdio_reads_console_input_like_natively() {
    let dir = tempfile::tempdir().unwrap();
    let exe = gcc(dir.path(), "upper", UPPERCASE_STDIN, &["-static"]);
    same_as_native_with_input(&exe, &[], b"hello\nvkernel world\nthird line\n")
        .expect_code(3)
        .stdout_has("2: VKERNEL WORLD\n3: THIRD LINE\n3 lines\n");
}

#[test]
fn image_made_with_the_cpio_tool_runs_its_init() {
    // What the README tells users: `find . | cpio -o -H newc > my.cpio`.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let exe = gcc(dir.path(), "hello", FORK_WAIT_SLEEP, &["-static"]);
    std::fs::copy(&exe, root.join("init")).unwrap();
    std::fs::write(root.join("etc/motd"), "made by cpio\n").unwrap();
    let image = dir.path().join("my.cpio");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd '{}' && find . | cpio --quiet -o -H newc > '{}'",
            root.display(),
            image.display()
        ))
        .status()
        .expect("running cpio (ci/setup.sh installs it)");
    assert!(status.success(), "cpio failed");
    common::vkernel(&["run", "--image", image.to_str().unwrap()])
        .expect_code(5)
        .stdout_has("parent: g=1, child 2 status 5")
        .stdout_has("slept at least 50 ms: yes");
}

#[test]
fn a_fork_the_host_pool_cannot_copy_kills_the_child_before_it_runs() {
    // pmap=host copies the parent at fork, in the vmspace_clone that goes
    // with the child's first RUN: when the pool cannot hold the copy, the
    // child is killed (SIGKILL, said on stderr) before it runs, and the
    // parent goes on. With room, the child runs. About 1 s.
    let dir = tempfile::tempdir().unwrap();
    let exe = common::c_program(dir.path(), "forkoom");
    let exe = exe.to_str().unwrap();
    let run =
        |pool: &str| common::vkernel(&["run", "--pmap", "host", "--pool", pool, "--", exe, "24"]);
    run("256")
        .expect_code(0)
        .stdout_has("child exited 0")
        .stdout_has("second fork: ok");
    run("40")
        .expect_code(0)
        .stdout_has("child killed by signal 9")
        .stdout_has("second fork: ok")
        .stderr_has("out of memory at fork (ENOMEM): killed (SIGKILL)");
}

/// VM exits and `vmspace_pread`s of one `vkernel run --stats` of
/// tests/c/forkloop.c (`n` glibc fork + _exit + waitpid cycles) under
/// `pmap`, less what the design does not decide (as `forkbench_exits`).
/// A `pmap` run of forkloop's `n` cycles: its exits (but slice ends and
/// clock reads), preads, and the shadow leaves rewritten when a fork's
/// child took over the dead child's shadow.
fn glibc_fork_exits(exe: &std::path::Path, pmap: &str, n: u32) -> (i64, u64, i64) {
    let r = common::vkernel(&[
        "run",
        "--stats",
        "--pmap",
        pmap,
        "--",
        exe.to_str().unwrap(),
        &n.to_string(),
    ]);
    r.expect_code(0).stdout_has(&format!("forked {n}"));
    let exits = common::stats_exits(&r.stderr)
        - 2 * common::stats_count(&r.stderr, " slice ends")
        - common::stats_call_count(&r.stderr, "Clock") as i64;
    if pmap == "guest" {
        // Every child but the first runs on the last one's shadow.
        let adopted = common::stats_count(&r.stderr, " shadows by fresh vmspaces");
        assert_eq!(adopted, n as i64 - 1, "{}", r.stderr);
    }
    (
        exits,
        common::stats_call_count(&r.stderr, "VmspacePread"),
        common::stats_count(&r.stderr, " shadow leaves rewritten"),
    )
}

#[test]
fn a_glibc_fork_cycle_costs_two_exits_per_system_call() {
    // (Here, not in processes.rs: it compiles C, which CI's QEMU runs of
    // processes.rs cannot.)
    // glibc's fork cycle makes four system calls (clone, the child's
    // set_robust_list and exit_group, wait4), two exits each: nothing
    // else, on either pmap. The child's exit read its robust list head
    // (a pread, an exit of its own) before the walk was left out for
    // memory nobody else can see. With pmap=guest the child broke
    // copy-on-write on two pages of glibc's data every cycle (a fault
    // to the kernel and an invalidation: 20 exits a cycle): the parent
    // learns them and its next fork copies them at once (13 exits); the
    // child's first touches of those copies and of its stack were a
    // host-resolved fault each (8 exits now: the host rewrites those
    // leaves in the dead child's shadow the child takes over) and, once
    // each fork put its copies in the pages the dead child had, nothing
    // is rewritten at all: KVM's shadow of the last child serves the next.
    let dir = tempfile::TempDir::new().unwrap();
    let exe = common::c_program(dir.path(), "forkloop");
    for pmap in ["host", "guest"] {
        let (small, small_reads, small_rewritten) = glibc_fork_exits(&exe, pmap, 8);
        let (large, large_reads, large_rewritten) = glibc_fork_exits(&exe, pmap, 24);
        let per_cycle = (large - small) as f64 / 16.0;
        assert!(
            per_cycle <= 8.5,
            "pmap={pmap}: {per_cycle:.2} exits per glibc fork+exit+wait ({small} for 8 cycles, {large} for 24)"
        );
        if pmap == "host" {
            assert_eq!(
                small_reads, large_reads,
                "a cycle read process memory: {small_reads} preads for 8 cycles, {large_reads} for 24"
            );
        }
        assert_eq!(
            small_rewritten, large_rewritten,
            "pmap={pmap}: a child's copies were not in its dead sibling's pages"
        );
    }
}
