//! Deliberate misbehaviour chosen on the command line, so tests can show
//! how the host reports a crashing or protocol-breaking guest kernel.

use guestlib::hypercall;
use vkernel_abi::{layout, Hypercall};

/// A known value at a known symbol, for debugger tests (`print/x
/// VKERNEL_MAGIC` reads it out of guest memory): "vkernel!" in ASCII.
#[no_mangle]
#[used]
pub static VKERNEL_MAGIC: u64 = 0x216c_656e_7265_6b76;

/// How many times `fault=spin` went round its loop (a debugger can watch
/// it grow).
#[no_mangle]
pub static SPIN_COUNT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// `fault=null|ud|gp|div|trap`: crash the kernel in the given way;
/// `fault=spin`: spin forever without a single exit, `fault=idle`: wait
/// for console input forever (for tests that interrupt a running guest).
pub fn fault(kind: &str) {
    guestlib::println!("kernel: faulting on purpose ({kind})");
    // SAFETY: none of these is safe; they exist to crash the kernel so the
    // host's crash report can be tested.
    unsafe {
        match kind {
            "null" => {
                let v = core::ptr::read_volatile(core::ptr::null::<u64>());
                guestlib::println!("read {v}");
            }
            "ud" => core::arch::asm!("ud2"),
            "gp" => core::arch::asm!("cli"),
            "div" => {
                core::arch::asm!("xor edx, edx", "xor ecx, ecx", "div ecx", out("eax") _, out("edx") _, out("ecx") _)
            }
            "idle" => loop {
                // Wait for console input forever (a debugger's Ctrl-C must
                // still get through).
                let _ = hypercall::call(Hypercall::Idle, [0; 7]);
            },
            "spin" => loop {
                SPIN_COUNT.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                core::hint::spin_loop();
            },
            "trap" => {
                // The trap area is supervisor-only: writing it is a #PF.
                core::ptr::write_volatile((layout::TRAP_AREA_BASE + 0x1000) as *mut u64, 0);
            }
            _ => guestlib::println!("kernel: unknown fault kind {kind}"),
        }
    }
}

/// `hcfault=outside|across|unaligned|unknown`: issue a hypercall whose argument
/// block the host must refuse (or an unknown hypercall number).
pub fn hypercall_fault(kind: &str, mem_bytes: u64) {
    guestlib::println!("kernel: bad hypercall on purpose ({kind})");
    let port = Hypercall::ConsoleWrite.port();
    match kind {
        "outside" => hypercall::raw_port_out(port, (mem_bytes + 0x1000) as u32),
        "across" => hypercall::raw_port_out(port, (mem_bytes - 8) as u32),
        "unaligned" => hypercall::raw_port_out(port, 0x2001),
        "unknown" => {
            let r = hypercall::call_nr(63, [0; 7]);
            guestlib::println!(
                "kernel: unknown hypercall returned {:?}",
                r.map_err(|e| e.name())
            );
        }
        _ => guestlib::println!("kernel: unknown hcfault kind {kind}"),
    }
}
