//! The kernel context: everything the kernel owns, in one value that the
//! scheduler holds and lends to each system call. There are no global
//! tables; a handler takes what it needs from here.

use alloc::boxed::Box;

use crate::mm::{Mm, SpaceRef};
use crate::proc::exec::ArgBuf;
use crate::proc::ProcTable;

/// The kernel.
pub struct Kernel {
    pub procs: ProcTable,
    pub mm: Mm,
    /// The cpio image programs are loaded from.
    pub image: &'static [u8],
    /// Time slice in microseconds (the RUN timeout).
    pub slice_us: u64,
    /// `boottrace`: print when /init first runs (host clock), for the
    /// boot-stage benchmark; cleared once printed.
    pub boot_trace: bool,
    /// exec's argument and environment strings, copied out of the caller
    /// before its old image goes away.
    pub args: Box<ArgBuf>,
}

impl Kernel {
    /// The address space of live process `s`.
    pub fn space(&self, s: usize) -> SpaceRef {
        self.procs.procs[s].space()
    }
}
