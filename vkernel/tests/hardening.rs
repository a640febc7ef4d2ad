//! Smaller hardening checks of #19 (tests/c/hardening.c, run natively
//! first, then in the guest): writev/readv with lengths that overflow are
//! EINVAL, futex on a kernel address is EFAULT, a VEX instruction raising
//! #GP is SIGSEGV (SI_KERNEL), not SIGILL. One boot: about half a second.

mod common;

#[test]
fn writev_futex_and_vex_faults_behave_as_linux() {
    common::c_checks_pass_natively_and_in_the_guest("hardening");
}

/// A process's PKRU is its own and never the kernel's: before the fix a
/// process that denied itself key 0 stopped the VM (the guest kernel runs
/// in ring 3 on key-0 pages under PVM), and one that denied itself access
/// hung it (the host took the PKRU fault for a stale mapping and resumed
/// forever). Under both pmaps. About a second.
#[test]
fn protection_keys_are_each_process_own() {
    common::c_checks_pass_natively_and_in_the_guest("pkeys");
    let dir = tempfile::TempDir::new().unwrap();
    let exe = common::c_program(dir.path(), "pkeys");
    common::vkernel(&["run", "--pmap", "guest", "--", exe.to_str().unwrap()])
        .expect_code(0)
        .stdout_has("\n0 failed");
}
