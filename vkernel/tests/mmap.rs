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
