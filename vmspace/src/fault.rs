//! Page-fault resolution for a vmspace running on the vCPU: a fault the
//! map allows is fixed here without waking the guest kernel (with
//! fault-around); anything else goes back to it as a trap.

use vkernel_abi::layout::PAGE_SIZE;
use vkernel_abi::mman::{PROT_EXEC, PROT_NONE, PROT_WRITE};
use vkernel_abi::Errno;

use crate::map::Backing;
use crate::pagetable::{leaf_flags, pte};
use crate::registry::VmspaceRegistry;

/// x86 page-fault error-code bits (the ABI's).
pub use vkernel_abi::paging::pf;

/// What to do after a page fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// The page is mapped now: run the vmspace again.
    Resolved,
    /// The access is not allowed (or outside every mapping): hand the
    /// fault to the guest kernel as `T_PAGEFLT`, with the hardware's
    /// error code.
    Deliver,
    /// The guest's own page tables (a `MAP_VPAGETABLE` entry) do not allow
    /// the access: hand the fault to the guest kernel as `T_PAGEFLT` with
    /// this error code, the one the hardware would report walking the
    /// guest's tables (the shadow's P bit says nothing about them).
    DeliverWith {
        /// The error code the guest kernel sees.
        error_code: u64,
    },
}

/// Whether a mapping with `prot` allows the access in `error_code`.
fn allows(prot: u64, error_code: u64) -> bool {
    if prot == PROT_NONE {
        return false;
    }
    if error_code & pf::W != 0 && prot & PROT_WRITE == 0 {
        return false;
    }
    if error_code & pf::I != 0 && prot & PROT_EXEC == 0 {
        return false;
    }
    true
}

/// Whether present leaf `entry` allows the access in `error_code`.
pub(crate) fn leaf_allows(entry: u64, error_code: u64) -> bool {
    entry & pte::P != 0
        && entry & pte::US != 0
        && (error_code & pf::W == 0 || entry & pte::RW != 0)
        && (error_code & pf::I == 0 || entry & pte::NX == 0)
}

impl VmspaceRegistry {
    /// Resolves now the instruction fetch at `rip` that a run of vmspace
    /// `id` is about to make, when it would be a host-resolved fault: the
    /// page lies in a `MAP_VPAGETABLE` entry whose shadow has no leaf for
    /// it yet and whose guest tables map it executable for user mode. The
    /// fetch happens as soon as the run starts, so this is the fault's own
    /// work (the guest leaf marked accessed, the shadow leaf and its
    /// accessed neighbours installed) without its exit: a `pmap=guest`
    /// fork's child starts in a fresh shadow, and its first instruction
    /// was one exit of its cycle's seven. Returns whether it installed
    /// the leaf; anything else (no such entry, the page shadowed already,
    /// or the guest's tables refuse the fetch, an error) is left to the
    /// fault, as before.
    pub fn prefault_fetch(&mut self, id: u64, rip: u64) -> bool {
        let fault_around = self.fault_around;
        let Ok((space, host)) = self.space(id) else {
            return false;
        };
        // Only a root KVM has not walked yet is a fresh shadow: every
        // other RUN costs a set lookup here, not a map lookup and a walk.
        if !space.unshadowed.contains(&space.root) {
            return false;
        }
        let Some(entry) = space.map.lookup(rip).copied() else {
            return false;
        };
        let fetch = pf::U | pf::I;
        if !entry.is_vpagetable() || !allows(entry.prot, fetch) {
            return false;
        }
        let page = rip & !(PAGE_SIZE - 1);
        if !matches!(space.lookup(host, page), Ok(None)) {
            return false;
        }
        matches!(
            crate::vpt::resolve_fault(space, host, &entry, rip, fetch, fault_around),
            Ok(FaultOutcome::Resolved)
        )
    }

    /// Handles a page fault of vmspace `id` at `addr` with hardware
    /// `error_code` (unknown id → `ENOENT`).
    ///
    /// Inside a `MAP_VPAGETABLE` entry whose protection allows the access,
    /// the guest's tables decide (see [`crate::vpt`]): one shadow leaf and
    /// `Resolved`, or `DeliverWith` the guest's error code.
    ///
    /// Otherwise: resolved if `addr` is inside an entry whose protection allows the
    /// access: the page is brought in and mapped, and so are up to
    /// `fault_around - 1` other pages of the same entry not yet mapped in
    /// the same aligned window of `fault_around` pages (a larger window
    /// for a sequential first touch, see [`crate::space::Vmspace::fault_window`]),
    /// their host memory populated at once. If the page was already mapped and
    /// allows the access, the fault was spurious: a translation cached by
    /// KVM is stale, so [`VmspaceRegistry::take_translation_reduced`] is set
    /// as well. Everything else (no entry, not allowed, reserved-bit
    /// faults) is delivered. A page the pool cannot back (pages are
    /// charged when touched, see `commit`) is `ENOMEM`: the caller hands
    /// the fault to the guest kernel, whose pmap finds the pool short and
    /// ends the process.
    pub fn handle_fault(
        &mut self,
        id: u64,
        addr: u64,
        error_code: u64,
    ) -> Result<FaultOutcome, Errno> {
        let fault_around = self.fault_around;
        let (space, host) = self.space(id)?;
        if error_code & pf::RSVD != 0 {
            log::warn!("vmspace {id:#x}: reserved-bit page fault at {addr:#x}");
            return Ok(FaultOutcome::Deliver);
        }
        // The process's own PKRU refused it (under PVM ring 3 honours
        // it): no mapping change helps, the process gets its SIGSEGV.
        if error_code & pf::PK != 0 {
            return Ok(FaultOutcome::Deliver);
        }
        let Some(entry) = space.map.lookup(addr).copied() else {
            return Ok(FaultOutcome::Deliver);
        };
        if !allows(entry.prot, error_code) {
            return Ok(FaultOutcome::Deliver);
        }
        if entry.is_vpagetable() {
            return Ok(crate::vpt::resolve_fault(
                space,
                host,
                &entry,
                addr,
                error_code,
                fault_around,
            )?);
        }
        let va = addr & !(PAGE_SIZE - 1);
        if let Some(old) = space.lookup(host, va)? {
            // Present: stale for the hardware, or lacking a permission the
            // entry grants. Rewrite the leaf and have KVM drop its copy.
            if leaf_allows(old, error_code) {
                host.translation_reduced = true;
            }
            let mut pt_pool = host.pool.charged();
            crate::pagetable::PageTable::new(&host.mem, &mut pt_pool).protect(
                space.root,
                va,
                leaf_flags(entry.prot),
            )?;
            return Ok(FaultOutcome::Resolved);
        }
        // The pool pages this fault hands out, backed by host memory in one
        // go at the end (see `HostPool::populate`); a page already in
        // `frames` or a shared physical page (guest RAM) has its memory.
        let mut fresh: Vec<u64> = Vec::new();
        let was_fresh = !space.frames.contains_key(&va);
        space.map_page(host, &entry, va)?;
        if was_fresh {
            fresh.extend(space.frames.get(&va));
        }

        // The aligned window of `window_pages` pages (rounded up to a power
        // of two) around the fault: `fault_around`, larger for a
        // sequential first touch.
        let stack = matches!(entry.backing, Backing::Anonymous { stack: true, .. });
        let window_pages = if stack {
            space.stack_window(va)
        } else {
            space.fault_window(va, fault_around)
        };
        let window_bytes = (window_pages.max(1) as u64).next_power_of_two() * PAGE_SIZE;
        let window = va & !(window_bytes - 1);
        let from = window.max(entry.start);
        let to = window.saturating_add(window_bytes).min(entry.end);
        let mut budget = window_pages.saturating_sub(1);
        let mut neighbour = from;
        let mut mapped_end = va + PAGE_SIZE;
        let mut mapped_start = va;
        while budget > 0 && neighbour < to {
            if neighbour != va && space.lookup(host, neighbour)?.is_none() {
                let was_fresh = !space.frames.contains_key(&neighbour);
                match space.map_page(host, &entry, neighbour) {
                    // The pool is short: the page that faulted is in, the
                    // others wait for their own touch.
                    Err(crate::error::Error::OutOfFrames) => break,
                    r => r?,
                }
                if was_fresh {
                    fresh.extend(space.frames.get(&neighbour));
                }
                mapped_end = mapped_end.max(neighbour + PAGE_SIZE);
                mapped_start = mapped_start.min(neighbour);
                budget -= 1;
            }
            neighbour += PAGE_SIZE;
        }
        // A fault that mapped nothing beyond its own page (the entry or
        // the pool ended) starts no sequence.
        if stack {
            space.stack_low = mapped_start;
            space.stack_window = window_pages;
        }
        space.sequential_next = mapped_end;
        space.sequential_window = if mapped_end > va + PAGE_SIZE {
            window_pages
        } else {
            0
        };
        host.pool.populate(&mut fresh);
        Ok(FaultOutcome::Resolved)
    }
}
