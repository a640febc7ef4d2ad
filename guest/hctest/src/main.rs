//! The vkernel test kernel: a guest kernel that exercises the host instead
//! of running processes. `vkernel test` and `vkernel bench` boot it, and
//! so does `vkernel run --test-kernel`; the kernel command line says what
//! to do:
//!
//! - `test=hypercalls`: every hypercall with good and bad arguments
//!   ([`suite`]), one line per case and `N passed, N failed`;
//! - `test=fuzz[:N] [seed=S]`: N random hypercalls ([`fuzz`]);
//! - `bench=all|quick`: the in-guest benchmarks ([`bench`]);
//! - `fault=KIND`, `hcfault=KIND`: crash or break the hypercall protocol
//!   on purpose ([`selftest`]), for the tests of the host's reports;
//! - `exit=N`: exit with status N at once.
//!
//! Like the real kernel it runs in ring 3, identity-mapped, entered at
//! `_start` with `rdi` = the boot-info address. Keeping it apart keeps the
//! real kernel free of test code (as Solo5 keeps each test its own guest).
#![no_std]
#![no_main]

mod bench;
mod fuzz;
mod hostfs;
mod selftest;
mod suite;
mod usercode;

use guestlib::bootinfo::{self, arg};
use guestlib::{eprintln, hypercall, println};

guestlib::boot_entry!();

/// Kernel entry, called from `_start` on the boot stack.
#[no_mangle]
pub extern "C" fn kmain(boot_info_addr: u64) -> ! {
    let boot_entry_ns = hypercall::clock_ns();
    let boot = bootinfo::read(boot_info_addr);
    // The host's terminal is in raw mode when stdin is one: lines end in
    // CR LF.
    if boot.info.console_kinds as u8 == vkernel_abi::console_kind::TTY {
        guestlib::console::CRLF.store(true, core::sync::atomic::Ordering::Relaxed);
    }
    let mib = boot.info.mem_bytes >> 20;
    eprintln!(
        "vkernel test kernel: {mib} MiB memory, cmdline \"{}\"",
        boot.cmdline
    );

    if let Some(kind) = arg(boot.cmdline, "fault") {
        selftest::fault(kind);
    }
    if let Some(kind) = arg(boot.cmdline, "hcfault") {
        // The bad ones stop the guest; an unknown number is ENOSYS and the
        // run ends normally.
        selftest::hypercall_fault(kind, boot.info.mem_bytes);
        hypercall::exit(0);
    }
    if let Some(status) = arg(boot.cmdline, "exit") {
        // Boot and exit: what the gdb tests step through.
        let status = status
            .parse()
            .unwrap_or_else(|_| usage("exit=N needs a number"));
        println!("kernel: exiting with status {status}");
        hypercall::exit(status);
    }
    if let Some(which) = arg(boot.cmdline, "bench") {
        println!("bench kernel_entry_ns={}", boot_entry_ns);
        bench::run_all(which == "quick");
        hypercall::exit(0);
    }
    match arg(boot.cmdline, "test") {
        Some("hypercalls") => {
            let failed = suite::run_all(&boot.info);
            hypercall::exit(if failed == 0 { 0 } else { 1 });
        }
        Some(t) if t.starts_with("fuzz") => {
            let count = match t.strip_prefix("fuzz:") {
                None if t == "fuzz" => 100_000,
                Some(n) => match n.parse() {
                    Ok(n) => n,
                    Err(_) => usage("test=fuzz:N needs a number"),
                },
                None => usage("unknown test"),
            };
            let seed = match arg(boot.cmdline, "seed").map(str::parse) {
                None => 0x5eed,
                Some(Ok(s)) => s,
                Some(Err(_)) => usage("seed=S needs a number"),
            };
            let pool_back = fuzz::run(count, boot.info.mem_bytes, seed);
            hypercall::exit(if pool_back { 0 } else { 1 });
        }
        Some(_) => usage("unknown test"),
        None => usage("nothing to do"),
    }
}

/// Says what the command line may ask for and exits with 126.
fn usage(why: &str) -> ! {
    eprintln!(
        "test kernel: {why}: give test=hypercalls, test=fuzz[:N] [seed=S], \
         bench=all|quick, fault=KIND, hcfault=KIND or exit=N"
    );
    hypercall::exit(126)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("test kernel panic: {info}");
    hypercall::exit(101)
}
