//! The vkernel guest kernel.
//!
//! It runs in ring 3 in an address space the host built: RAM identity-mapped
//! (virtual = guest-physical), the trap area at `TRAP_AREA_BASE`
//! (supervisor-only, untouchable from here). Everything privileged is a
//! hypercall. The host enters `_start` with `rdi` = the boot-info address.
#![no_std]
#![no_main]

mod bench;
mod bootinfo;
mod console;
mod fuzz;
mod hctest;
mod hypercall;
mod selftest;
mod usercode;
mod vmspace;

use vkernel_abi::cpio::Archive;

/// Size of the boot stack.
const STACK_BYTES: usize = 64 * 1024;

#[repr(C, align(16))]
struct Stack([u8; STACK_BYTES]);

#[no_mangle]
static mut BOOT_STACK: Stack = Stack([0; STACK_BYTES]);

core::arch::global_asm!(
    ".section .text._start",
    ".global _start",
    "_start:",
    "    lea rsp, [rip + BOOT_STACK + {stack}]",
    "    xor ebp, ebp",
    "    call kmain",
    "    ud2",
    stack = const STACK_BYTES,
);

/// Kernel entry, called from `_start` on the boot stack.
#[no_mangle]
pub extern "C" fn kmain(boot_info_addr: u64) -> ! {
    let boot_entry_ns = hypercall::clock_ns();
    let boot = bootinfo::read(boot_info_addr);
    let mib = boot.info.mem_bytes >> 20;
    println!(
        "vkernel guest kernel: {mib} MiB memory, cmdline \"{}\"",
        boot.cmdline
    );

    if let Some(kind) = bootinfo::arg(boot.cmdline, "fault") {
        selftest::fault(kind);
    }
    if let Some(kind) = bootinfo::arg(boot.cmdline, "hcfault") {
        selftest::hypercall_fault(kind, boot.info.mem_bytes);
    }

    if let Some(which) = bootinfo::arg(boot.cmdline, "bench") {
        println!("bench kernel_entry_ns={}", boot_entry_ns);
        bench::run_all(which == "quick");
        hypercall::exit(0);
    }
    if let Some(n) = bootinfo::arg(boot.cmdline, "test").and_then(|t| t.strip_prefix("fuzz")) {
        let count = n
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000);
        let seed = bootinfo::arg(boot.cmdline, "seed")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed);
        let pool_back = fuzz::run(count, boot.info.mem_bytes, seed);
        hypercall::exit(if pool_back { 0 } else { 1 });
    }
    if bootinfo::arg(boot.cmdline, "test") == Some("hypercalls") {
        let failed = hctest::run_all(&boot.info);
        hypercall::exit(if failed == 0 { 0 } else { 1 });
    }

    list_image(boot.image);
    let status = bootinfo::arg(boot.cmdline, "exit")
        .and_then(|s| s.parse::<i32>().ok())
        .unwrap_or(0);
    let uptime_us = hypercall::clock_ns() / 1000;
    println!("kernel: exiting with status {status} (host uptime {uptime_us} us)");
    hypercall::exit(status)
}

/// Prints the image's members: the first sign the boot path works.
fn list_image(image: &[u8]) {
    println!("image: {} bytes", image.len());
    for entry in Archive::new(image) {
        match entry {
            Ok(e) => println!("  {:>8} {:06o} /{}", e.data.len(), e.mode, e.name),
            Err(e) => {
                println!("image: {e}");
                break;
            }
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("kernel panic: {info}");
    hypercall::exit(101)
}
