//! Memory-mapped files (#13): `mmap` of tmpfs files, private (copy on
//! write) and shared, shared anonymous memory and `/dev/zero`, across
//! fork, with truncate (SIGBUS past the end), mprotect, msync,
//! `/proc/self/maps` and Linux's errno for each refusal. One C program,
//! built at test time, checks each against Linux natively first (in a
//! tmpfs directory), then in the guest; in the guest it also checks that
//! every page comes back once the mappings and files are gone.

mod common;

use std::process::Command;

use common::{c_program, vkernel};

#[test]
fn file_mappings_behave_as_on_linux_and_give_back_their_pages() {
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "mmap");
    // Natively on a tmpfs when there is one (its truncate and hole rules
    // are the guest's).
    let shm = std::path::Path::new("/dev/shm");
    let work = tempfile::tempdir_in(if shm.is_dir() { shm } else { dir.path() }).unwrap();
    let native = Command::new(&exe).arg(work.path()).output().unwrap();
    let native_out = String::from_utf8_lossy(&native.stdout);
    assert!(
        native.status.success() && native_out.contains("\n0 failed"),
        "natively:\n{native_out}"
    );
    let r = vkernel(&["run", "--", exe.to_str().unwrap(), "/tmp"]);
    assert!(!r.stdout.contains("FAIL"), "{}\n{}", r.stdout, r.stderr);
    r.expect_code(0).stdout_has("ok every page is back");
    // The SIGBUS children were killed by the kernel's fault path, which
    // says why.
    assert!(
        r.stderr.contains("SIGBUS at"),
        "no SIGBUS report: {}",
        r.stderr
    );
}

/// mremap (tests/c/mremap.c): shrinking, growing in place, moving with
/// MAYMOVE, FIXED and DONTUNMAP, shared file pages and their duplicate,
/// protection kept, the errors in Linux's order; natively first, then in
/// the guest on both pmaps.
#[test]
fn mremap_behaves_as_on_linux_on_both_pmaps() {
    for pmap in ["host", "guest"] {
        common::c_checks_pass_natively_and_in_the_guest_with("mremap", &[], &["--pmap", pmap]);
    }
}

/// Python's mmap.resize (mremap of its shared anonymous map: growing it
/// past its memory object's size leaves the new pages SIGBUS, as Linux's
/// shmem), and a bytearray grown past glibc's mmap threshold (its realloc
/// moves the block with mremap), compared with the host.
#[test]
fn python_resizes_mappings_as_on_the_host() {
    let script = r#"
import mmap, subprocess, sys
m = mmap.mmap(-1, 4096)
m[:5] = b"hello"
m.resize(3 * 4096)
print(len(m), m[:5])
m.resize(100)
print(len(m), m[:5])
touch = "import mmap; m = mmap.mmap(-1, 4096); m.resize(8192); m[5000]"
print(subprocess.run([sys.executable, "-c", touch]).returncode)
b = bytearray(b"x" * (1 << 20))
for i in range(6):
    b += b"y" * (1 << 20)
print(len(b), b[:2], b[-2:], b.count(b"x"))
"#;
    let out = common::same_as_host(&["/usr/bin/python3", "-c", script]);
    assert!(
        out.starts_with("12288 b'hello'\n100 b'hello'\n-7\n"),
        "{out}"
    );
}
