//! Inputs are bounded (#19): `--kernel`, `--image` and `-- PROGRAM` must
//! be regular files (`--rootfs` a directory, served by the host), no larger than `--memory` can hold, checked before reading.
//! A device, a FIFO, a directory or a file that is too large is refused in
//! one line with exit status 1, at once: none of them is read (a FIFO
//! would block, /dev/zero would never end, a sparse 64 GiB file would be
//! read into host memory).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::vkernel;

/// Runs `args`; expects exit 1 within a few seconds and exactly one line
/// on stderr containing `says`.
fn refused(args: &[&str], says: &str) {
    let start = Instant::now();
    let r = vkernel(args);
    let took = start.elapsed();
    r.expect_code(1).stderr_has(says);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(took < Duration::from_secs(10), "{args:?} took {took:?}");
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads the NUL-terminated path only.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// A sparse file of `len` bytes (no disk space, no time to make).
fn sparse(p: &Path, len: u64) {
    std::fs::File::create(p).unwrap().set_len(len).unwrap();
}

#[test]
fn devices_are_refused() {
    refused(
        &["run", "--kernel", "/dev/zero"],
        "--kernel /dev/zero: a character device, not a regular file",
    );
    refused(
        &["run", "--image", "/dev/zero"],
        "--image /dev/zero: a character device, not a regular file",
    );
    refused(
        &["run", "--", "/dev/zero"],
        "program /dev/zero: a character device, not a regular file",
    );
}

#[test]
fn fifos_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let f = fifo.to_str().unwrap();
    let says = format!("{f}: a FIFO, not a regular file");
    refused(&["run", "--kernel", f], &says);
    refused(&["run", "--image", f], &says);
    refused(&["run", "--", f], &says);
    refused(
        &["run", "--rootfs", f],
        &format!("--rootfs {f}: not a directory"),
    );
}

#[test]
fn directories_are_refused_where_a_file_is_expected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let says = format!("{d}: a directory, not a regular file");
    refused(&["run", "--kernel", d], &says);
    refused(&["run", "--image", d], &says);
    refused(&["run", "--", d], &says);
    // And a file where a directory is expected.
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let f = file.to_str().unwrap();
    refused(
        &["run", "--rootfs", f],
        &format!("--rootfs {f}: not a directory"),
    );
}

#[test]
fn files_larger_than_memory_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    sparse(&big, 64 << 30);
    let b = big.to_str().unwrap();
    let says = format!("{b}: larger than 16 MiB (what --memory can hold)");
    refused(&["run", "--memory", "16", "--kernel", b], &says);
    refused(&["run", "--memory", "16", "--image", b], &says);
    refused(&["run", "--memory", "16", "--", b], &says);
    // A --rootfs is served, not loaded: its size is not bounded by
    // --memory (tests/hostfs.rs reads a root larger than it).
}

#[test]
fn special_files_inside_a_rootfs_are_served_without_being_opened() {
    // A FIFO in the tree is a fifo to the guest (a guest pipe), never
    // opened on the host: a host open would block the run.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::copy(common::guest_program("hello"), root.join("init")).unwrap();
    mkfifo(&root.join("fifo"));
    let r = vkernel(&["run", "--rootfs", root.to_str().unwrap(), "--", "/init"]);
    r.expect_code(0);
}

/// A command line vkernel refuses is exit 1 (2 is kept for "the host
/// stopped the guest"; clap's own usage-error status is 2): a value out of
/// range, an unknown value, an unknown option, a missing value.
#[test]
fn usage_errors_exit_1_not_2() {
    for args in [
        &["run", "--memory", "1"][..],
        &["run", "--pmap", "nobody"],
        &["run", "--clock", "sundial"],
        &["run", "--no-such-option"],
        &["run", "--memory"],
        &["test", "--pool", "0"],
        &["no-such-command"],
    ] {
        let r = vkernel(args);
        r.expect_code(1).stderr_has("error:");
    }
    // Help and version are not errors.
    vkernel(&["run", "--help"])
        .expect_code(0)
        .stdout_has("--memory");
    vkernel(&["--version"]).expect_code(0).stdout_has("vkernel");
}
