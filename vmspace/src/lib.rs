//! The vmspace core: the host side of DragonFly BSD's vmspace system calls
//! (`vmspace_create`, `_destroy`, `_mmap`, `_munmap`, `_mcontrol`,
//! `_pread`, `_pwrite`, plus `mprotect` and clone extensions), with no KVM
//! inside, so all of it runs in unit tests on plain memory.
//!
//! A vmspace is an address space the guest kernel names by a 64-bit id.
//! The host keeps its map (entries with protections), its private pages
//! and its x86-64 page tables in the host pool, a guest-physical region
//! the guest kernel cannot reach; the vCPU runs a process with CR3 = the
//! vmspace's PML4. `MAP_VPAGETABLE` mappings take their translations
//! from the guest kernel's own page tables through a host-owned shadow
//! ([`vpt`] says why the hardware never walks the guest's tables here).
//! Every guest-visible check and errno follows the seed
//! (`vm_vmspace.c`, DragonFly's `kern_mmap`/`sys_munmap`).
//!
//! Reading order: [`registry`] (ids, lifecycle) → [`mmap`], [`mcontrol`],
//! [`rw`], [`fault`] (the calls), [`vpt`] (guest-managed tables) → [`space`] (page-level work on one
//! vmspace) → [`map`], [`commit`], [`pagetable`], [`pool`].
#![deny(missing_docs)]

pub mod audit;
pub mod commit;
pub mod error;
pub mod fault;
pub mod map;
pub mod mcontrol;
pub mod mmap;
pub mod pagetable;
pub mod pool;
pub mod ram;
pub mod registry;
pub mod rw;
pub mod space;
pub mod vpt;

pub use error::Error;
pub use fault::FaultOutcome;
pub use pagetable::PageTable;
pub use pool::{FrameAlloc, HostPool};
pub use ram::KernelRam;
pub use registry::VmspaceRegistry;
pub use space::TRAP_AREA_PML4_SLOT;
