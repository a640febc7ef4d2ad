//! Boot the real guest kernel on KVM: console output, exit status, crash
//! reports, refused inputs and bad hypercall blocks.

mod common;

use common::vkernel;
use std::io::Write;

#[test]
fn default_image_boots_and_exits_zero() {
    vkernel(&["run", "--append", "exit=0"])
        .expect_code(0)
        .stderr_has("vkernel guest kernel: 64 MiB memory")
        .stdout_has("/etc/motd")
        .stdout_has("/init")
        .stdout_has("kernel: exiting with status 0");
}

#[test]
fn memory_size_reaches_the_guest() {
    vkernel(&["run", "--memory", "128"])
        .expect_code(0)
        .stderr_has("128 MiB memory");
}

#[test]
fn guest_exit_status_is_vkernel_exit_status() {
    // Under VKERNEL_TEST_PMAP the command line starts with `pmap=...`.
    vkernel(&["run", "--append", "exit=7"])
        .expect_code(7)
        .stderr_has("exit=7\"");
}

fn crash(kind: &str) -> common::Run {
    let r = vkernel(&["run", "--test-kernel", "--append", &format!("fault={kind}")]);
    r.expect_code(2)
        .stderr_has("guest kernel crashed")
        .stderr_has("rax 0x")
        .stderr_has("r15 0x");
    r
}

#[test]
fn null_dereference_is_reported_with_cr2_and_registers() {
    crash("null")
        .stderr_has("page fault (#PF) (vector 14)")
        .stderr_has("fault address (cr2) 0x0: user read, page not present")
        .stderr_has("cs 0x0023");
}

#[test]
fn invalid_opcode_is_reported() {
    crash("ud").stderr_has("invalid opcode (#UD) (vector 6)");
}

#[test]
fn privileged_instruction_is_a_general_protection_fault() {
    crash("gp")
        .stderr_has("general protection (#GP) (vector 13)")
        .stderr_has("error code 0x0");
}

#[test]
fn divide_error_is_reported() {
    crash("div").stderr_has("divide error (#DE) (vector 0)");
}

#[test]
fn trap_area_is_not_writable_by_the_kernel() {
    crash("trap")
        .stderr_has("user write, protection violation")
        .stderr_has("(cr2) 0x7f8000001000");
}

#[test]
fn hypercall_block_outside_memory_stops_the_guest() {
    vkernel(&["run", "--test-kernel", "--append", "hcfault=outside"])
        .expect_code(2)
        .stderr_has("hypercall ConsoleWrite (port 0x501): argument block at 0x4001000 is not inside guest memory");
}

#[test]
fn hypercall_block_across_the_end_stops_the_guest() {
    vkernel(&["run", "--test-kernel", "--append", "hcfault=across"])
        .expect_code(2)
        .stderr_has("argument block at 0x3fffff8 is not inside guest memory [0, 0x4000000)");
}

#[test]
fn misaligned_hypercall_block_stops_the_guest() {
    vkernel(&["run", "--test-kernel", "--append", "hcfault=unaligned"])
        .expect_code(2)
        .stderr_has("not 8-byte aligned");
}

#[test]
fn unknown_hypercall_is_enosys_and_logged() {
    vkernel(&["run", "--test-kernel", "--append", "hcfault=unknown"])
        .expect_code(0)
        .stdout_has("unknown hypercall returned Err(\"ENOSYS\")")
        .stderr_has("unknown hypercall 63: ENOSYS");
}

fn temp_file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f
}

#[test]
fn kernel_that_is_not_an_elf_is_refused_before_running() {
    let f = temp_file(b"not an elf at all");
    let path = f.path().to_str().unwrap();
    vkernel(&["run", "--kernel", path])
        .expect_code(1)
        .stderr_has(&format!("kernel {path}: not an ELF file"));
}

#[test]
fn kernel_for_another_machine_is_refused() {
    let mut elf = std::fs::read(env!("CARGO_BIN_EXE_vkernel")).unwrap(); // any x86-64 ELF
    elf[18] = 183; // EM_AARCH64
    let f = temp_file(&elf);
    vkernel(&["run", "--kernel", f.path().to_str().unwrap()])
        .expect_code(1)
        .stderr_has("not x86-64");
}

#[test]
fn position_independent_kernel_is_refused() {
    // The host binary itself is a PIE (ET_DYN): refused as not fixed-address.
    vkernel(&["run", "--kernel", env!("CARGO_BIN_EXE_vkernel")])
        .expect_code(1)
        .stderr_has("not a fixed-address executable");
}

#[test]
fn missing_kernel_file_is_named() {
    vkernel(&["run", "--kernel", "/nonexistent/kernel"])
        .expect_code(1)
        .stderr_has("/nonexistent/kernel: No such file");
}

#[test]
fn malformed_image_is_refused() {
    let f = temp_file(b"070701this is not hex at all and the archive is cut short");
    let path = f.path().to_str().unwrap();
    vkernel(&["run", "--image", path])
        .expect_code(1)
        .stderr_has(&format!("image {path}: "));
}

#[test]
fn missing_kvm_device_is_one_clear_sentence() {
    vkernel(&["run", "--kvm", "/dev/no-such-kvm"])
        .expect_code(1)
        .stderr_has("cannot open /dev/no-such-kvm (No such file or directory (os error 2)): KVM is not available");
}

#[test]
fn help_explains_the_options() {
    let r = vkernel(&["run", "--help"]);
    r.expect_code(0)
        .stdout_has("--kernel")
        .stdout_has("--image")
        .stdout_has("--memory")
        .stdout_has("--append");
}

#[test]
fn kernel_segment_outside_memory_is_refused() {
    // The built guest kernel with its first PT_LOAD moved past 64 MiB.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/guest/x86_64-unknown-none/release/kernel"
    );
    let mut elf = std::fs::read(path).unwrap();
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    for field in [16, 24] {
        elf[phoff + field..phoff + field + 8].copy_from_slice(&0x7000_0000u64.to_le_bytes());
    }
    let f = temp_file(&elf);
    vkernel(&["run", "--kernel", f.path().to_str().unwrap()])
        .expect_code(1)
        .stderr_has("segment 0x70000000..")
        .stderr_has("lies outside guest memory [0x100000, 0x4000000)");
}

/// A short run puts into KVM only the pool it touches: one 64 MiB slot of
/// the 1 GiB pool (a slot costs KVM 2.5 MB of metadata per GiB, allocated
/// at boot and freed at exit: about 1 ms of a boot when the whole pool was
/// one slot). Counted from the debug log, not timed. And the boot stages
/// log (`RUST_LOG=vkernel::boot=debug`) names each stage through the VM's
/// teardown.
#[test]
fn a_short_run_puts_one_pool_slot_into_kvm_and_logs_its_boot_stages() {
    let out = std::process::Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_vkernel"))
        .args(common::with_pmap(&["run", "--append", "exit=0"]))
        .env("RUST_LOG", "vkernel::boot=debug,vkernel::vcpu=debug")
        .output()
        .expect("running vkernel");
    let r = common::Run::from(out);
    r.expect_code(0);
    let slots: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("pool slot"))
        .collect();
    assert_eq!(
        slots.len(),
        1,
        "pool slots added by a short run:\n{}",
        r.stderr
    );
    assert!(
        slots[0].contains("[0x0, 0x4000000) of the pool"),
        "{}",
        slots[0]
    );
    for stage in [
        "KVM_CREATE_VM: done at",
        "loading the kernel and the image: done at",
        "sandbox (capabilities, seccomp): done at",
        "guest run (first KVM_RUN to the guest's end): done at",
        "VM teardown (KVM's VM destroyed, guest memory unmapped): done at",
    ] {
        r.stderr_has(stage);
    }
}

/// A trivial /init's whole run (the kernel's start, exec, the program,
/// the end) takes few exits: exec loads the image with one batch of
/// vmspace calls (with the pages it wrote mapped ahead), the guest
/// pmap's new space is one batch, and the posted calls left at the end
/// are dropped rather than sent (the host ends every vmspace anyway).
/// It was 33 exits on the host pmap and 18 on the guest pmap; this
/// fails if boot grows exits back.
#[test]
fn a_trivial_init_boots_and_exits_in_few_exits() {
    let r = vkernel(&["run", "--stats", "--append", "init=/bin/systest -- exit 0"]);
    r.expect_code(0);
    // Without a usable TSC (QEMU's CPU models: CI's hardware-style KVM)
    // every clock reading of the kernel is a `clock` hypercall, an exit
    // the clock page saves wherever the TSC can be trusted (62 here).
    let exits =
        common::stats_exits(&r.stderr) - common::stats_call_count(&r.stderr, "Clock") as i64;
    // Host pmap: the banner, exec's batch, the RUN, the exit system
    // call, the exit (5). The guest pmap adds the invalidations of
    // exec's protection changes and the faults its kernel resolves (18:
    // the stack faults in small windows, growing as it does).
    // Room for a time-slice end or two.
    let limit = if std::env::var("VKERNEL_TEST_PMAP").as_deref() == Ok("guest") {
        20
    } else {
        8
    };
    assert!(
        exits <= limit,
        "{exits} exits for a trivial /init (at most {limit}):\n{}",
        r.stderr
    );
    assert_eq!(
        common::stats_call_count(&r.stderr, "VmspaceDestroy"),
        0,
        "the last vmspace's destroy goes with the run's end, unsent:\n{}",
        r.stderr
    );
}
