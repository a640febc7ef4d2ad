//! `crash null|ud|div|gp|stack`: dies of a fault, which the kernel
//! reports and turns into the signal Linux would send.
#![no_std]
#![no_main]

use vkernel_user::{arg, entry, println};

entry!(main);

fn main() -> i32 {
    let kind = arg(1);
    println!("crash: about to fault ({kind})");
    // SAFETY: none; faulting is the point.
    unsafe {
        match kind {
            "ud" => core::arch::asm!("ud2"),
            "div" => {
                core::arch::asm!("xor edx, edx", "xor ecx, ecx", "div ecx", out("eax") _, out("edx") _, out("ecx") _)
            }
            "gp" => core::arch::asm!("cli"),
            "wild" => core::ptr::write_volatile(0x1234_5678_9000 as *mut u64, 1),
            _ => {
                let v = core::ptr::read_volatile(core::ptr::null::<u64>());
                println!("read {v}");
            }
        }
    }
    0
}
