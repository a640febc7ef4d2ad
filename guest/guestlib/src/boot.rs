//! The entry both guest kernels share: the host enters `_start` in ring 3
//! with `rdi` = the boot-info address and no stack; `_start` takes a
//! 256 KiB boot stack and calls the kernel's `kmain(boot_info_addr)`.

/// Size of the boot stack.
pub const STACK_BYTES: usize = 256 * 1024;

/// Defines `_start` and the boot stack in the kernel crate that invokes it
/// (the linker script makes `_start` the entry; a macro, because the
/// linker would not pull a library's `_start` out of its archive).
#[macro_export]
macro_rules! boot_entry {
    () => {
        #[repr(C, align(16))]
        struct BootStack([u8; $crate::boot::STACK_BYTES]);

        #[no_mangle]
        static mut BOOT_STACK: BootStack = BootStack([0; $crate::boot::STACK_BYTES]);

        core::arch::global_asm!(
            ".section .text._start",
            ".global _start",
            "_start:",
            "    lea rsp, [rip + BOOT_STACK + {stack}]",
            "    xor ebp, ebp",
            "    call kmain",
            "    ud2",
            stack = const $crate::boot::STACK_BYTES,
        );
    };
}
