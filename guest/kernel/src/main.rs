//! The vkernel guest kernel.
//!
//! It runs in ring 3 in an address space the host built: RAM identity-mapped
//! (virtual = guest-physical), the trap area at `TRAP_AREA_BASE`
//! (supervisor-only, untouchable from here). Everything privileged is a
//! hypercall. The host enters `_start` with `rdi` = the boot-info address.
#![no_std]
#![no_main]

mod exec;
mod physmem;
mod pmap;
mod proc;
mod random;
mod regions;
mod sched;
mod syscall;
mod sysfile;
mod sysmem;
mod sysmisc;
mod sysproc;
mod systime;
mod uaccess;
mod vm;

use guestlib::{bootinfo, eprintln, hypercall, println, vmspace};

use exec::ArgBuf;
use proc::ProcTable;

use vkernel_abi::cpio::Archive;

/// Size of the boot stack.
const STACK_BYTES: usize = 256 * 1024;

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
    if boot
        .cmdline
        .split_ascii_whitespace()
        .any(|w| w == "boottrace")
    {
        eprintln!("boot: kernel entry at {boot_entry_ns} ns");
    }
    let mib = boot.info.mem_bytes >> 20;
    eprintln!(
        "vkernel guest kernel: {mib} MiB memory, cmdline \"{}\"",
        boot.cmdline
    );

    if let Some(status) = bootinfo::arg(boot.cmdline, "exit") {
        // Boot, list the image and exit: the boot path alone.
        list_image(boot.image);
        let status = status.parse::<i32>().unwrap_or(0);
        let uptime_us = hypercall::clock_ns() / 1000;
        println!("kernel: exiting with status {status} (host uptime {uptime_us} us)");
        hypercall::exit(status)
    }
    start_init(&boot)
}

static mut TABLE: ProcTable = ProcTable::new();
static mut SCRATCH: ArgBuf = ArgBuf::new();

/// Loads init (`/init`, or `init=PATH`) as pid 1 and runs the scheduler.
/// Processes' memory is managed by the host, or by this kernel with
/// `pmap=guest` (see [`vm`]).
/// init's argv is `/etc/init.args` from the image if there is one (the
/// arguments, each ending in NUL: `vkernel run -- PROG ARGS` writes it),
/// else the path and the words after ` -- ` on the command line.
fn start_init(boot: &bootinfo::Boot) -> ! {
    // SAFETY: taken once, here; from now on the scheduler owns them (the
    // kernel is single-threaded and never re-enters kmain).
    let (t, args) = unsafe {
        (
            &mut *core::ptr::addr_of_mut!(TABLE),
            &mut *core::ptr::addr_of_mut!(SCRATCH),
        )
    };
    t.image = boot.image;
    let guest_pmap = match bootinfo::arg(boot.cmdline, "pmap") {
        None | Some("host") => false,
        Some("guest") => true,
        Some(other) => {
            eprintln!("kernel: pmap={other}: expected pmap=host or pmap=guest");
            hypercall::exit(126);
        }
    };
    vm::init(guest_pmap, boot.info.free_start, boot.info.mem_bytes);
    if let Some(us) = bootinfo::arg(boot.cmdline, "slice_us").and_then(|v| v.parse::<u64>().ok()) {
        t.slice_us = us.clamp(100, 10_000_000);
    }
    t.boot_trace = boot
        .cmdline
        .split_ascii_whitespace()
        .any(|w| w == "boottrace");
    let path = bootinfo::arg(boot.cmdline, "init").unwrap_or("/init");
    args.clear();
    let mut ok = true;
    match exec::find(boot.image, b"etc/init.args") {
        Ok(list) if path == "/init" => {
            for a in list.split(|&b| b == 0).filter(|a| !a.is_empty()) {
                ok &= args.push(a, false).is_ok();
            }
        }
        _ => {
            ok &= args.push(path.as_bytes(), false).is_ok();
            if let Some((_, rest)) = boot.cmdline.split_once(" -- ") {
                for w in rest.split_ascii_whitespace() {
                    ok &= args.push(w.as_bytes(), false).is_ok();
                }
            }
        }
    }
    for e in [&b"HOME=/"[..], b"PATH=/bin:/", b"TERM=linux"] {
        ok &= args.push(e, true).is_ok();
    }
    if !ok {
        eprintln!("kernel: init's arguments are too long");
        hypercall::exit(126);
    }
    let Some(slot) = t.alloc(0) else {
        hypercall::exit(126);
    };
    if let Err(e) = sysproc::exec_into(t, slot, path.as_bytes(), args) {
        eprintln!("kernel: cannot run {path}: {}", e.message());
        let status = if e == exec::ExecError::NotFound {
            127
        } else {
            126
        };
        hypercall::exit(status);
    }
    sched::run(t, args)
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
