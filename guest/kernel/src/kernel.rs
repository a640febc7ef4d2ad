//! The kernel context: everything the kernel owns, in one value that the
//! scheduler holds and lends to each system call. There are no global
//! tables; a handler takes what it needs from here.

use crate::fs::file::FdTableRef;
use crate::fs::vfs::{InodeRef, Vfs};
use crate::mm::{Mm, SpaceRef};
use crate::proc::ProcTable;

/// The kernel.
pub struct Kernel {
    pub procs: ProcTable,
    pub mm: Mm,
    /// The file tree.
    pub vfs: Vfs,
    /// The root of the unmounted tmpfs whose unlinked files back shared
    /// anonymous memory (`MAP_SHARED|MAP_ANONYMOUS`, shared `/dev/zero`).
    pub shm: alloc::rc::Rc<crate::fs::tmpfs::Node>,
    /// The names Unix sockets are bound at.
    pub unix_names: alloc::rc::Rc<crate::fs::unix::Names>,
    /// Time slice in microseconds (the RUN timeout).
    pub slice_us: u64,
    /// `boottrace`: print when /init first runs (host clock), for the
    /// boot-stage benchmark; cleared once printed.
    pub boot_trace: bool,
}

impl Kernel {
    /// The address space of live process `s`.
    pub fn space(&self, s: usize) -> SpaceRef {
        self.procs.procs[s].space()
    }

    /// The descriptor table of process `s`.
    pub fn files(&self, s: usize) -> FdTableRef {
        self.procs.procs[s].files.clone()
    }

    /// The working directory of process `s`.
    pub fn cwd(&self, s: usize) -> InodeRef {
        self.procs.procs[s]
            .cwd
            .clone()
            .unwrap_or_else(|| self.vfs.root())
    }
}
