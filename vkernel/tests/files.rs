//! Files (#13): the VFS, tmpfs, devfs, descriptors and pipes, through a
//! C program built at test time with `gcc -static` that checks each call
//! against what Linux does (it prints `ok ...` lines and `N failed`), and
//! `#!` scripts run as programs.

mod common;

use std::process::Command;

use common::{c_checks_pass_natively_and_in_the_guest_with, c_program, vkernel};
use loader::cpio_writer::{pack, Member};

#[test]
fn file_system_calls_pipes_and_devices_behave_as_on_linux() {
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "files");
    // The same program passes natively (it checks Linux's own behaviour).
    let native = Command::new(&exe).current_dir(dir.path()).output().unwrap();
    let native_out = String::from_utf8_lossy(&native.stdout);
    assert!(native_out.contains("0 failed"), "natively:\n{native_out}");
    let r = vkernel(&["run", "--", exe.to_str().unwrap()]);
    r.expect_code(0).stdout_has("0 failed");
    assert!(!r.stdout.contains("FAIL"), "{}", r.stdout);
}

#[test]
fn a_script_init_runs_its_interpreter_with_the_script_as_argument() {
    let hello = std::fs::read(common::guest_program("hello")).unwrap();
    let img = pack(&[
        Member {
            name: "bin/hello",
            mode: 0o100755,
            data: &hello,
        },
        Member {
            name: "init",
            mode: 0o100755,
            data: b"#!/bin/hello scripted\n",
        },
    ]);
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), img).unwrap();
    // argv: /bin/hello scripted /init (hello prints argv[1], and 3 lines
    // since "/init" is not a count).
    vkernel(&["run", "--image", f.path().to_str().unwrap()])
        .expect_code(0)
        .stdout_has("scripted: line 3 of 3");
}

#[test]
fn random_file_system_operations_match_linux_and_give_back_their_pages() {
    // The same random sequence of create/write/truncate/rename/unlink/
    // mkdir/rmdir/link/symlink/stat/read, with every result printed, run
    // natively on a tmpfs (Linux is the model) and in the guest's /tmp.
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "fsops");
    let shm = std::path::Path::new("/dev/shm");
    for seed in ["1", "2", "3", "4"] {
        let work = tempfile::tempdir_in(if shm.is_dir() { shm } else { dir.path() }).unwrap();
        let native = Command::new(&exe)
            .args([work.path().to_str().unwrap(), seed, "600"])
            .output()
            .unwrap();
        assert!(native.status.success());
        let native_out = String::from_utf8_lossy(&native.stdout);
        let r = vkernel(&["run", "--", exe.to_str().unwrap(), "/tmp", seed, "600"]);
        r.expect_code(0);
        assert_eq!(
            r.stdout, native_out,
            "seed {seed}: the guest differs from Linux"
        );
        // Every page the files held is back once they are gone.
        let line = r
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("vkernel pages before "))
            .unwrap_or_else(|| panic!("no page count: {}", r.stderr));
        let (before, after) = line.split_once(" after ").unwrap();
        assert_eq!(before, after, "seed {seed}: tmpfs pages not given back");
    }
}

/// Hypercalls of a `--stats` run of `bigio N` (N MiB through a tmpfs file
/// and a pipe).
fn bigio_hypercalls(exe: &std::path::Path, mib: u32) -> u64 {
    stats_hypercalls(exe, &mib.to_string(), "bigio ok")
}

/// Hypercalls of a `--stats` run of `exe arg`, which must print `ok`.
fn stats_hypercalls(exe: &std::path::Path, arg: &str, ok: &str) -> u64 {
    let r = vkernel(&["run", "--stats", "--", exe.to_str().unwrap(), arg]);
    r.expect_code(0).stdout_has(ok);
    common::stats_hypercalls(&r.stderr) as u64
}

#[test]
fn a_pipe_writer_hands_its_bytes_straight_to_a_sleeping_reader() {
    // A reader asleep in read() gets a writer's bytes without the ring
    // (one vmspace_copy on pmap=host, where the ring takes a pread in and a
    // pwrite out), and what its buffer cannot take stays in the pipe, in
    // order, as natively. A one-byte ping-pong round trip costs 4 ctl RUNs
    // on either pmap: each side runs on after its write to its read (the
    // scheduler's run-on), so each write finds the other side asleep in
    // read and hands over, and on pmap=host the hand-over's vmspace_copy
    // goes with the next RUN. It was 2 copies of their own with run-on
    // alone, 3 when the scheduler moved on after every call (in one
    // direction the reader was still runnable, so the ring's pread and
    // pwrite) and 4 before the hand-over. About 3 s.
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "pipehandoff");
    let native = Command::new(&exe).arg("20").output().unwrap();
    assert!(
        String::from_utf8_lossy(&native.stdout).contains("pipehandoff ok"),
        "natively: {native:?}"
    );
    let (small, large) = (
        stats_hypercalls(&exe, "20", "pipehandoff ok"),
        stats_hypercalls(&exe, "220", "pipehandoff ok"),
    );
    let per_round = large.saturating_sub(small) as f64 / 200.0;
    assert!(
        per_round < 4.5,
        "{per_round} hypercalls per ping-pong round ({small} for 20, {large} for 220)"
    );
}

#[test]
fn a_tmpfs_reads_copy_goes_with_the_next_run() {
    // A 1 MiB tmpfs read on pmap=host copies the file's pages (one piece
    // where they are neighbours in RAM) to the process with a pwrite
    // posted with the next RUN: per MiB written once and read twice, the
    // three calls' RUNs and the write's pread (4 hypercalls; 6 when each
    // read's pwritev was an exit of its own). pmap=guest copies in the
    // kernel: the RUNs alone (3). The data is checked too.
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "tmpfsread");
    let (small, large) = (
        stats_hypercalls(&exe, "4", "tmpfsread ok"),
        stats_hypercalls(&exe, "12", "tmpfsread ok"),
    );
    let per_mib = large.saturating_sub(small) as f64 / 8.0;
    assert!(
        per_mib < 4.5,
        "{per_mib} hypercalls per MiB written and read twice ({small} for 4 MiB, {large} for 12)"
    );
}

#[test]
fn a_posted_read_copy_the_host_cannot_back_fails_the_read_alone() {
    // tmpfs reads into fresh memory past what an 8 MiB pool can back: the
    // read whose copy (posted with the next RUN) finds no page fails with
    // EFAULT before the process runs again (a copy made at once comes back
    // short instead), and the process and the kernel go on.
    passes_with_an_8_mib_pool("tmpfsoom");
}

/// Runs C program `name` with pmap=host and an 8 MiB pool: it prints
/// "NAME ok" and exits 0.
fn passes_with_an_8_mib_pool(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), name);
    let r = vkernel(&[
        "run",
        "--pmap",
        "host",
        "--pool",
        "8",
        "--",
        exe.to_str().unwrap(),
    ]);
    r.expect_code(0).stdout_has(&format!("{name} ok"));
}

#[test]
fn a_posted_hand_over_the_host_cannot_back_fails_both_calls() {
    // A pipe's 64 KiB writes handed straight to a reader asleep in read,
    // into fresh memory past what an 8 MiB pool can back: the hand-over
    // whose copy (posted with the next RUN) finds no page fails the write
    // and the read with EFAULT before either process runs (a copy made at
    // once left a short write and a failed read), and both go on.
    passes_with_an_8_mib_pool("pipeoom");
}

#[test]
fn a_pipe_writer_gives_the_reader_it_woke_the_cpu() {
    // A stream of 64 KiB writes read in 64 KiB calls: a writer that goes on
    // writing after waking its reader gives way to it (sched.rs, RunOn), so
    // each write finds the reader asleep in read and hands over: per chunk
    // the two calls' ctl RUNs, on either pmap (on pmap=host the hand-over's
    // vmspace_copy goes with the next RUN). Were the writer to run on,
    // every other chunk would go through the ring (a pread and a pwrite:
    // 3 per chunk on pmap=host). The data is checked too.
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "pipestream");
    let (small, large) = (
        stats_hypercalls(&exe, "50", "pipestream ok"),
        stats_hypercalls(&exe, "250", "pipestream ok"),
    );
    let per_chunk = large.saturating_sub(small) as f64 / 200.0;
    assert!(
        per_chunk < 2.25,
        "{per_chunk} hypercalls per 64 KiB ({small} for 50 chunks, {large} for 250)"
    );
}

#[test]
fn file_and_pipe_data_cross_the_host_in_few_hypercalls() {
    // A 1 MiB read() or write() of a tmpfs file is one preadv/pwritev on
    // pmap=host (it was one pread/pwrite per 4 KiB page: 256), and a pipe
    // between a 1 MiB write and a 1 MiB read moves the MiB with one
    // vmspace_copy, whichever side waits for the other (the ring's 64 KiB
    // at a time cost a pread and a pwrite each, about 53 hypercalls per
    // MiB in all); pmap=guest copies with none. Per MiB written and read
    // back through a file, then through a pipe, the system calls and
    // context switches cost about 7 hypercalls.
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "bigio");
    let (small, large) = (bigio_hypercalls(&exe, 4), bigio_hypercalls(&exe, 12));
    let per_mib = large.saturating_sub(small) / 8;
    assert!(
        per_mib < 40,
        "{per_mib} hypercalls per MiB ({small} for 4 MiB, {large} for 12 MiB)"
    );
}

#[test]
fn pipe_capacity_and_preadv2_pwritev2_behave_as_on_linux_on_both_pmaps() {
    for pmap in ["host", "guest"] {
        c_checks_pass_natively_and_in_the_guest_with("iocalls", &[], &["--pmap", pmap]);
    }
}

#[test]
fn running_a_file_textbusy_and_execveat_behave_as_on_linux() {
    // ETXTBSY: exec maps a program's file, so writing it would change
    // the code of every process that runs it. Checked natively first.
    for pmap in ["host", "guest"] {
        c_checks_pass_natively_and_in_the_guest_with("execfile", &[], &["--pmap", pmap]);
    }
}

/// bash and coreutils against a running program (ETXTBSY), Python's
/// `O_RDONLY|O_TRUNC` and `os.execve` of a descriptor (fexecve, which
/// glibc makes an execveat with `AT_EMPTY_PATH`).
const EXECFILE_SCRIPT: &str = r#"
d=$(mktemp -d /var/tmp/vk-ef.XXXXXX)
cp /bin/sleep $d/s
$d/s 1 & pid=$!
sleep 0.3
( echo x > $d/s ) 2>&1 | sed "s|$d|D|"
truncate -s 0 $d/s 2>&1 | sed "s|$d|D|"
wait $pid; echo "sleep status $?"
echo x > $d/s && echo "written once it ended"
printf 'hello' > $d/f
python3 - "$d" <<'PY'
import os, sys
d = sys.argv[1]
os.close(os.open(d + "/f", os.O_RDONLY | os.O_TRUNC))
print("O_RDONLY|O_TRUNC size", os.stat(d + "/f").st_size)
try:
    os.open(d, os.O_RDONLY | os.O_TRUNC)
except IsADirectoryError as e:
    print("directory:", e.strerror)
sys.stdout.flush()
fd = os.open("/bin/echo", os.O_RDONLY)
if os.fork() == 0:
    os.execve(fd, ["echo", "run by fexecve"], {})
os.wait()
PY
rm -rf $d
"#;

#[test]
fn bash_and_python_meet_textbusy_o_trunc_and_fexecve_as_on_the_host() {
    let out = common::same_as_host(&["/bin/bash", "-c", EXECFILE_SCRIPT]);
    assert_eq!(
        out,
        "/bin/bash: line 6: D/s: Text file busy\n\
         truncate: cannot open 'D/s' for writing: Text file busy\n\
         sleep status 0\nwritten once it ended\nO_RDONLY|O_TRUNC size 0\n\
         directory: Is a directory\nrun by fexecve\n"
    );
}
