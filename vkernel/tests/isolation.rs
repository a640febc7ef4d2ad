//! One process must never stop the VM (#19): a static program whose
//! children run `in`, `ins`, `outs`, `out` of the wrong width or from their
//! own code, `hlt` and `cli` sees each child killed by SIGSEGV, as on Linux
//! (checked natively first), while the VM, the parent and a sibling
//! process go on; under both pmaps.

mod common;

use std::process::Command;

use common::{c_program, vkernel};

#[test]
fn io_instructions_kill_only_the_process_that_ran_them() {
    let dir = tempfile::tempdir().unwrap();
    let exe = c_program(dir.path(), "portio");
    let native = Command::new(&exe).output().unwrap();
    let native_out = String::from_utf8_lossy(&native.stdout);
    assert!(
        native.status.success() && native_out.contains(" 0 failed"),
        "natively:\n{native_out}"
    );
    for pmap in ["host", "guest"] {
        let r = vkernel(&[
            "run",
            "--pmap",
            pmap,
            "--stats",
            "--",
            exe.to_str().unwrap(),
        ]);
        r.expect_code(0).stdout_has(" 0 failed");
        assert!(!r.stdout.contains("FAIL"), "{}", r.stdout);
        // The host saw the I/O exits and gave each to the guest kernel.
        let faults: u64 = r
            .stderr
            .split(" process faults")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(
            faults >= 5,
            "--pmap {pmap}: {faults} process faults\n{}",
            r.stderr
        );
    }
}
