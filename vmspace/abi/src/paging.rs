//! x86-64 page-table entry and page-fault error-code bits. The host's
//! tables use them, and so do the guest kernel's own tables for
//! `MAP_VPAGETABLE` mappings, whose format is the hardware's.

/// Page-table entry bits.
pub mod pte {
    /// Present.
    pub const P: u64 = 1 << 0;
    /// Writable.
    pub const RW: u64 = 1 << 1;
    /// User accessible.
    pub const US: u64 = 1 << 2;
    /// Accessed.
    pub const A: u64 = 1 << 5;
    /// Dirty.
    pub const D: u64 = 1 << 6;
    /// Page size: a 2 MiB (PD) or 1 GiB (PDPT) leaf.
    pub const PS: u64 = 1 << 7;
    /// No execute.
    pub const NX: u64 = 1 << 63;
    /// Physical address bits 12..51.
    pub const ADDR: u64 = 0x000f_ffff_ffff_f000;
}

/// The leaf flags of a user page with protection `prot` (`PROT_*`): `P|US`,
/// `RW` if writable, `NX` unless executable, with A (and D when writable)
/// preset so no walker has to write them back. `PROT_NONE` gives 0: not
/// present. The host's tables and the guest pmap's use the same.
pub fn leaf_flags(prot: u64) -> u64 {
    use crate::mman::{PROT_EXEC, PROT_MASK, PROT_WRITE};
    if prot & PROT_MASK == 0 {
        return 0;
    }
    let mut flags = pte::P | pte::US | pte::A;
    if prot & PROT_WRITE != 0 {
        flags |= pte::RW | pte::D;
    }
    if prot & PROT_EXEC == 0 {
        flags |= pte::NX;
    }
    flags
}

/// Page-fault error-code bits.
pub mod pf {
    /// The page was present (a protection violation).
    pub const P: u64 = 1 << 0;
    /// The access was a write.
    pub const W: u64 = 1 << 1;
    /// The access came from ring 3.
    pub const U: u64 = 1 << 2;
    /// A reserved bit was set in a paging entry.
    pub const RSVD: u64 = 1 << 3;
    /// The access was an instruction fetch.
    pub const I: u64 = 1 << 4;
    /// PKRU refused the access (protection keys): the mapping is fine.
    pub const PK: u64 = 1 << 5;
}
