//! What the guest's kernels share: the hypercall wrappers (the vmspace calls
//! among them), the console, the boot info, and a formatting buffer the user
//! runtime uses too. The real kernel (`guest/kernel`) and the test kernel
//! (`guest/hctest`) each link it.
#![no_std]

pub mod batch;
pub mod boot;
pub mod bootinfo;
pub mod console;
pub mod fmtbuf;
pub mod hypercall;
pub mod vmspace;
