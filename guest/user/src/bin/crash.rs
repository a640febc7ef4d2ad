//! `crash null|ud|div|gp|wild|stub`: dies of a fault, which the kernel
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
            // Enter the syscall stub directly with a kernel-half return
            // address: the system call is made, then the frame to resume
            // is refused and the process dies of SIGSEGV.
            "stub" => core::arch::asm!(
                "mov rcx, {bad}",
                "mov eax, 39",
                "jmp {stub}",
                bad = in(reg) 0xffff_8000_0000_0000u64,
                stub = in(reg) 0x7f80_0000_0000u64,
                out("rcx") _,
                out("rax") _,
            ),
            "wild" => core::ptr::write_volatile(0x1234_5678_9000 as *mut u64, 1),
            _ => {
                let v = core::ptr::read_volatile(core::ptr::null::<u64>());
                println!("read {v}");
            }
        }
    }
    0
}
