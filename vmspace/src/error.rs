//! The crate's error type: failures of the host's own machinery (pool,
//! page-table pages). What a guest did wrong is an [`Errno`] instead, and
//! never one of these.

use vkernel_abi::Errno;

/// A failure of the host side of the vmspace core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The host pool has no page left for the caller.
    #[error("host pool exhausted: no free page")]
    OutOfFrames,
    /// A page-table or pool page is not backed by guest memory.
    #[error("guest-physical address {gpa:#x} is not in guest memory: {source}")]
    Memory {
        /// The address that could not be accessed.
        gpa: u64,
        /// What vm-memory reported.
        #[source]
        source: vm_memory::GuestMemoryError,
    },
    /// A 2 MiB or 1 GiB leaf sits where a lower-level table is needed.
    #[error("a large page covers {va:#x}, where a 4 KiB mapping was asked for")]
    LargePageInTheWay {
        /// The virtual address being mapped.
        va: u64,
    },
    /// An address given to the page-table builder is not aligned.
    #[error("{what} {addr:#x} is not aligned to {align:#x}")]
    Misaligned {
        /// Which address.
        what: &'static str,
        /// Its value.
        addr: u64,
        /// The alignment it needs.
        align: u64,
    },
    /// A page of a `MAP_VPAGETABLE` entry was asked for as if the host
    /// managed it (its translations are the guest's).
    #[error("{va:#x} is in a MAP_VPAGETABLE mapping: the guest's tables translate it")]
    NotHostManaged {
        /// The virtual address.
        va: u64,
    },
    /// The layout given to the registry does not fit the guest memory.
    #[error("bad memory layout: {0}")]
    Layout(String),
}

impl From<Error> for Errno {
    /// How a host-side failure is reported to the guest kernel: pool
    /// exhaustion as `ENOMEM`, anything else (a host bug) as `EFAULT`.
    fn from(e: Error) -> Errno {
        match e {
            Error::OutOfFrames => Errno::ENOMEM,
            other => {
                log::error!("vmspace core: {other}");
                Errno::EFAULT
            }
        }
    }
}
