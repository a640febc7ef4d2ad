//! `--jail DIR` (#19): a jailed vkernel runs in new mount, PID and network
//! namespaces with DIR as its root, holding no descriptor it inherited,
//! and its guest behaves as without the jail (a --rootfs still served).
//! Needs root or unprivileged user namespaces (CI runs as root). About a
//! second.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use common::{c_program, guest_program, vkernel};

#[test]
fn a_jailed_run_prints_what_an_unjailed_one_does() {
    let jail = tempfile::tempdir().unwrap();
    let j = jail.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hardening = c_program(dir.path(), "hardening");
    for prog in [
        guest_program("hello"),
        hardening.to_str().unwrap().to_string(),
    ] {
        let free = vkernel(&["run", "--", &prog]);
        let jailed = vkernel(&["run", "--jail", j, "--", &prog]);
        free.expect_code(0);
        jailed.expect_code(0);
        assert_eq!(free.stdout, jailed.stdout, "{prog}\n{}", jailed.stderr);
    }
    // A jail that is not a directory is refused before anything runs.
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let f = file.to_str().unwrap();
    vkernel(&["run", "--jail", f, "--", &guest_program("hello")])
        .expect_code(1)
        .stderr_has("not a directory");
}

/// The ns/ link `name` of process `pid`.
fn ns(pid: &str, name: &str) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}")).unwrap()
}

#[test]
fn a_jailed_vkernel_is_in_new_namespaces_rooted_in_the_jail() {
    let jail = tempfile::tempdir().unwrap();
    // The rootfs outside /tmp (the guest's tmpfs covers its /tmp).
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let build = tempfile::tempdir().unwrap();
    std::fs::copy(c_program(build.path(), "jailed"), root.path().join("init")).unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    std::fs::write(root.path().join("etc/message"), "from the host\n").unwrap();
    // A descriptor vkernel inherits (no close-on-exec): the jailed child
    // must not hold it.
    let marker = build.path().join("inherited-marker");
    std::fs::write(&marker, b"").unwrap();
    let cpath = std::ffi::CString::new(marker.to_str().unwrap()).unwrap();
    // SAFETY: open with a NUL-terminated path, no O_CLOEXEC on purpose.
    let leaked = unsafe { libc::open(cpath.as_ptr(), libc::O_RDONLY) };
    assert!(leaked > 2);
    let mut child = Command::new(env!("CARGO_BIN_EXE_vkernel"))
        .args(common::with_pmap(&[
            "run",
            "--jail",
            jail.path().to_str().unwrap(),
            "--rootfs",
            root.path().to_str().unwrap(),
            "--",
            "/init",
        ]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // SAFETY: the spawned process has its copy.
    unsafe { libc::close(leaked) };
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "message: from the host\n");
    // The jailed vkernel is the child of the one we started.
    let outer = child.id().to_string();
    let children = std::fs::read_to_string(format!("/proc/{outer}/task/{outer}/children")).unwrap();
    let jailed = children
        .split_whitespace()
        .next()
        .expect("a jailed child")
        .to_string();
    for name in ["mnt", "net", "pid"] {
        assert_ne!(ns(&jailed, name), ns("self", name), "{name} namespace");
    }
    let want = std::fs::metadata(jail.path()).unwrap();
    let got = std::fs::metadata(format!("/proc/{jailed}/root")).unwrap();
    assert_eq!(
        (got.dev(), got.ino()),
        (want.dev(), want.ino()),
        "root is the jail"
    );
    let status = std::fs::read_to_string(format!("/proc/{jailed}/status")).unwrap();
    assert!(status.contains("Seccomp:\t2"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    for fd in std::fs::read_dir(format!("/proc/{jailed}/fd")).unwrap() {
        let target = std::fs::read_link(fd.unwrap().path()).unwrap_or_default();
        assert!(
            !target.to_string_lossy().contains("inherited-marker"),
            "the jailed vkernel holds an inherited descriptor"
        );
    }
    drop(child.stdin.take());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(rest, "message: from the host\nbye\n");
    assert_eq!(status.code(), Some(0));
}
