//! Property test: random sequences of every call over a few ids and a
//! small address window, checked against a page-granular model: results
//! (value or errno), contents (through pread and through the real page
//! tables), commit accounting (ENOMEM exactly when the pool could not hold
//! what the mappings may need) and the registry's own audit.
//!
//! Besides the window, a vmspace may hold a *tail*: one `MAP_VPAGETABLE`
//! entry over the rest of the user range, `[TAIL, VM_MAX_USER_ADDRESS)`,
//! as a guest kernel maps its processes, with pages of other kinds mapped
//! into it and holes punched in it. Its faults spread over 2 MiB, 1 GiB
//! and 512 GiB regions, past a small shadow allowance, so the shadow is
//! dropped and rebuilt often, next to host-managed pages.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use proptest::prelude::*;
use vkernel_abi::layout::{PAGE_SIZE, VM_MAX_USER_ADDRESS, VM_MIN_USER_ADDRESS};
use vkernel_abi::mman::*;
use vkernel_abi::Errno;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmspace::fault::pf;
use vmspace::mmap::MMAP_BASE;
use vmspace::{FaultOutcome, VmspaceRegistry};

/// Small enough that ENOMEM happens (3 spaces can map about 60 pages).
const POOL_PAGES: u64 = 64;
/// The window straddles MMAP_BASE (a 2 MiB boundary): fixed mappings land
/// on both sides, non-fixed ones above it.
const WINDOW_PAGES: u64 = 32;
const WBASE: u64 = MMAP_BASE - 16 * PAGE_SIZE;
/// Kernel buffer area for pread/pwrite.
const KBUF: u64 = 0x8_0000;
const RW_: u64 = PROT_READ | PROT_WRITE;
/// Kernel pages mapped shared (written through by the vmspaces).
const SHARED_AREA: u64 = 0x1_0000;
/// Kernel pages mapped private (never written, so copies are timeless).
const PRIVATE_AREA: u64 = 0x4_0000;
const AREA_PAGES: u64 = 16;
/// The guest page tables MAP_VPAGETABLE mappings use (root, PDPT, PD, and
/// the two PTs the window straddles), built once in kernel RAM.
const GROOT: u64 = 0xa_0000;
const GPDPT: u64 = 0xa_1000;
const GPD: u64 = 0xa_2000;
const GPT_LO: u64 = 0xa_3000;
const GPT_HI: u64 = 0xa_4000;
/// Kernel pages the guest tables map (window page i → page i % 8).
const VPT_AREA: u64 = 0xc_0000;
/// The tail: from the 2 MiB region after the window's to the top of the
/// user range. Window operations never reach it.
const TAIL: u64 = MMAP_BASE + (2 << 20);
/// The guest tables behind the tail: every slot of each points at the
/// next level, so all of the tail is mapped (page va → VPT_AREA page
/// (va / 4096) % 8, writable, accessed and dirty).
const GPDPT_TAIL: u64 = 0xa_5000;
const GPD_TAIL: u64 = 0xa_6000;
const GPT_TAIL: u64 = 0xa_7000;
/// Distinct places in the tail a fault may hit.
const TAIL_SPOTS: u64 = 64;

/// Spot `k` of the tail, page `page` of it: spots spread over four 2 MiB
/// regions in each of four 1 GiB regions in each of four 512 GiB regions.
fn tail_addr(k: u64, page: u64) -> u64 {
    TAIL + (k % 4) * (2 << 20) + ((k / 4) % 4) * (1 << 30) + (k / 16) * (1 << 39) + page * PAGE_SIZE
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Anon,
    Shared(u64),
    Private(u64),
    /// A MAP_VPAGETABLE page; `true` once SETMAP named the guest tables
    /// (as an mmap: SETMAP at once).
    Vpt(bool),
}

/// What the guest tables say about window address `va`: the kernel page
/// and whether it is writable (every 4th page not present, every 4th
/// read-only; all entries accessed and dirty, so the host changes none).
fn guest_entry(va: u64) -> Option<(u64, bool)> {
    if va >= TAIL {
        return Some((VPT_AREA + (va / PAGE_SIZE) % 8 * PAGE_SIZE, true));
    }
    // Outside the window and the tail the guest's tables map nothing (a
    // non-fixed mapping may land there).
    let i = va.checked_sub(WBASE)? / PAGE_SIZE;
    if i >= WINDOW_PAGES {
        return None;
    }
    let page = VPT_AREA + (i % 8) * PAGE_SIZE;
    match i % 4 {
        3 => None,
        2 => Some((page, false)),
        _ => Some((page, true)),
    }
}

fn build_guest_tables(mem: &GuestMemoryMmap) {
    for t in [
        GROOT, GPDPT, GPD, GPT_LO, GPT_HI, GPDPT_TAIL, GPD_TAIL, GPT_TAIL,
    ] {
        mem.write_slice(&[0u8; PAGE_SIZE as usize], GuestAddress(t))
            .unwrap();
    }
    let set = |t: u64, i: u64, e: u64| mem.write_obj(e, GuestAddress(t + i * 8)).unwrap();
    let table = P | RW | US;
    set(GROOT, 0, GPDPT | table);
    set(GPDPT, 0, GPD | table);
    set(GPD, (WBASE >> 21) & 511, GPT_LO | table);
    set(GPD, ((WBASE >> 21) + 1) & 511, GPT_HI | table);
    for i in 0..WINDOW_PAGES {
        let va = WBASE + i * PAGE_SIZE;
        let pt = if (va >> 21) == (WBASE >> 21) {
            GPT_LO
        } else {
            GPT_HI
        };
        let e = match guest_entry(va) {
            None => 0,
            Some((page, w)) => page | P | US | A | D | if w { RW } else { 0 },
        };
        set(pt, (va >> 12) & 511, e);
    }
    for i in 0..512 {
        set(GPDPT_TAIL, i, GPD_TAIL | table);
        set(GPD_TAIL, i, GPT_TAIL | table);
        set(
            GPT_TAIL,
            i,
            (VPT_AREA + i % 8 * PAGE_SIZE) | P | RW | US | A | D,
        );
    }
    for i in (TAIL >> 21) & 511..512 {
        set(GPD, i, GPT_TAIL | table);
    }
    for i in 1..512 {
        set(GPDPT, i, GPD_TAIL | table);
    }
    for i in 1..(VM_MAX_USER_ADDRESS >> 39) {
        set(GROOT, i, GPDPT_TAIL | table);
    }
}

#[derive(Clone, Debug)]
enum Op {
    Create {
        id: u64,
        bad: bool,
    },
    Destroy {
        id: u64,
    },
    Mmap {
        id: u64,
        page: u64,
        pages: u64,
        short: u64,
        prot: u64,
        kind: Kind,
        fixed: bool,
    },
    Munmap {
        id: u64,
        page: u64,
        sub: u64,
        len: u64,
    },
    Mprotect {
        id: u64,
        page: u64,
        sub: u64,
        len: u64,
        prot: u64,
    },
    Mcontrol {
        id: u64,
        page: u64,
        sub: u64,
        len: u64,
        behav: u64,
    },
    Pwrite {
        id: u64,
        off: u64,
        len: u64,
        seed: u8,
    },
    Pread {
        id: u64,
        off: u64,
        len: u64,
    },
    Fault {
        id: u64,
        off: u64,
        code: u64,
    },
    Clone {
        src: u64,
        dst: u64,
    },
    /// MAP_VPAGETABLE over the whole tail (MAP_FIXED), then SETMAP.
    MmapTail {
        id: u64,
    },
    /// munmap of the whole tail.
    MunmapTail {
        id: u64,
    },
    /// MAP_FIXED of `pages` pages of `kind` (anonymous or MAP_VPAGETABLE,
    /// then SETMAP) at spot `k` of the tail.
    MmapInTail {
        id: u64,
        k: u64,
        pages: u64,
        vpt: bool,
    },
    /// munmap of `pages` pages at spot `k` of the tail.
    MunmapInTail {
        id: u64,
        k: u64,
        pages: u64,
    },
    FaultTail {
        id: u64,
        k: u64,
        page: u64,
        code: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let id = prop_oneof![1 => Just(0u64), 8 => 1..4u64];
    let page = 0..WINDOW_PAGES;
    let prot = prop_oneof![20 => 0..8u64, 1 => Just(8u64)];
    let off = 0..WINDOW_PAGES * PAGE_SIZE;
    let kind = prop_oneof![
        3 => Just(Kind::Anon),
        1 => (0..AREA_PAGES).prop_map(Kind::Shared),
        1 => (0..AREA_PAGES).prop_map(Kind::Private),
        // `true`: SETMAP right after the mmap.
        2 => any::<bool>().prop_map(Kind::Vpt),
    ];
    let len = prop_oneof![1 => Just(0u64), 6 => 1..6 * PAGE_SIZE];
    let codes = prop::sample::select(vec![
        pf::U,
        pf::U | pf::W,
        pf::U | pf::I,
        pf::U | pf::P,
        pf::U | pf::P | pf::W,
    ]);
    let tail = prop_oneof![
        1 => id.clone().prop_map(|id| Op::MmapTail { id }),
        1 => id.clone().prop_map(|id| Op::MunmapTail { id }),
        1 => (id.clone(), 0..TAIL_SPOTS, 1..4u64, any::<bool>())
            .prop_map(|(id, k, pages, vpt)| Op::MmapInTail { id, k, pages, vpt }),
        1 => (id.clone(), 0..TAIL_SPOTS, 1..4u64)
            .prop_map(|(id, k, pages)| Op::MunmapInTail { id, k, pages }),
        5 => (id.clone(), 0..TAIL_SPOTS, prop_oneof![3 => 0..4u64, 1 => 0..512u64], codes.clone())
            .prop_map(|(id, k, page, code)| Op::FaultTail { id, k, page, code }),
    ];
    prop_oneof![
        1 => (id.clone(), prop::bool::weighted(0.1)).prop_map(|(id, bad)| Op::Create { id, bad }),
        1 => id.clone().prop_map(|id| Op::Destroy { id }),
        8 => (id.clone(), page.clone(), 1..12u64, 0..PAGE_SIZE, prot.clone(), kind, prop::bool::weighted(0.7))
            .prop_map(|(id, page, pages, short, prot, kind, fixed)| {
                // VPAGETABLE needs read-write: mostly give it that.
                let prot = match kind {
                    Kind::Vpt(_) if prot != 0 && prot < 8 => prot | PROT_READ | PROT_WRITE,
                    _ => prot,
                };
                Op::Mmap { id, page, pages, short, prot, kind, fixed }
            }),
        2 => (id.clone(), page.clone(), prop_oneof![3 => Just(0u64), 1 => 1..PAGE_SIZE], len.clone())
            .prop_map(|(id, page, sub, len)| Op::Munmap { id, page, sub, len }),
        2 => (id.clone(), page.clone(), prop_oneof![5 => Just(0u64), 1 => 1..PAGE_SIZE], len.clone(), prot)
            .prop_map(|(id, page, sub, len, prot)| Op::Mprotect { id, page, sub, len, prot }),
        2 => (id.clone(), page, 0..PAGE_SIZE, len, prop_oneof![4 => 0..13u64, 1 => Just(MADV_SETMAP)])
            .prop_map(|(id, page, sub, len, behav)| Op::Mcontrol { id, page, sub, len, behav }),
        2 => (id.clone(), 0..WINDOW_PAGES, 1..8u64)
            .prop_map(|(id, page, n)| Op::Mcontrol { id, page, sub: 0, len: n * PAGE_SIZE, behav: MADV_SETMAP }),
        4 => (id.clone(), off.clone(), 0..3 * PAGE_SIZE, any::<u8>())
            .prop_map(|(id, off, len, seed)| Op::Pwrite { id, off, len, seed }),
        3 => (id.clone(), off.clone(), 0..3 * PAGE_SIZE).prop_map(|(id, off, len)| Op::Pread { id, off, len }),
        4 => (id.clone(), off, codes)
            .prop_map(|(id, off, code)| Op::Fault { id, off, code }),
        2 => (id.clone(), id).prop_map(|(src, dst)| Op::Clone { src, dst }),
        6 => tail,
    ]
}

#[derive(Clone, Debug)]
struct MPage {
    prot: u64,
    kind: Kind,
    /// Private contents (anonymous or private copy); None = not yet
    /// written (zero, or the kernel's page).
    data: Option<Vec<u8>>,
    /// The registry holds (and charges) a frame for it: it was touched
    /// (faulted, read or written) since it was mapped or discarded.
    held: bool,
}

#[derive(Default, Clone, Debug)]
struct MSpace {
    /// Pages mapped by themselves (in the tail too, where they take the
    /// tail's place).
    pages: BTreeMap<u64, MPage>,
    /// The tail is mapped (SETMAP done): every page of it that is neither
    /// in `pages` nor in `holes` is a MAP_VPAGETABLE page.
    tail: bool,
    /// Pages of the tail unmapped since it was mapped.
    holes: BTreeSet<u64>,
}

/// A page of the tail itself.
const TAIL_PAGE: MPage = MPage {
    prot: RW_,
    kind: Kind::Vpt(true),
    data: None,
    held: false,
};

/// The registry's host-state charge per vmspace (reserved, never drawn).
const HOST_STATE: u64 = vmspace::registry::HOST_STATE_PAGES as u64;

impl MSpace {
    fn needs_frame(p: &MPage) -> bool {
        !matches!(p.kind, Kind::Shared(_) | Kind::Vpt(_))
    }

    /// Pages the real registry charges: PML4, private pages touched, one
    /// table per 2 MiB / 1 GiB / 512 GiB region touched by a page that is
    /// not MAP_VPAGETABLE, and the shadow allowance if any page is.
    fn charge(&self, shadow: u64) -> u64 {
        self.frames() + self.mapping_charge(shadow)
    }

    /// Private frames held (charged as they are touched).
    fn frames(&self) -> u64 {
        self.pages
            .values()
            .filter(|p| Self::needs_frame(p) && p.held)
            .count() as u64
    }

    /// The charge but its frames: what an mmap reserves.
    fn mapping_charge(&self, shadow: u64) -> u64 {
        let host_managed = |p: &&MPage| !matches!(p.kind, Kind::Vpt(_));
        let tables: u64 = [21u32, 30, 39]
            .iter()
            .map(|&shift| {
                self.pages
                    .iter()
                    .filter(|(_, p)| host_managed(p))
                    .map(|(va, _)| va >> shift)
                    .collect::<BTreeSet<_>>()
                    .len() as u64
            })
            .sum();
        let vpt = self.tail || self.pages.values().any(|p| !host_managed(&p));
        1 + tables + if vpt { shadow } else { 0 }
    }

    /// What is mapped at page `va`.
    fn entry(&self, va: u64) -> Option<MPage> {
        match self.pages.get(&va) {
            Some(p) => Some(p.clone()),
            None if self.tail && va >= TAIL && !self.holes.contains(&va) => Some(TAIL_PAGE),
            None => None,
        }
    }

    fn covered(&self, start: u64, end: u64) -> bool {
        if end == VM_MAX_USER_ADDRESS {
            // The whole tail: its holes must all have been mapped again.
            return self.tail && self.holes.iter().all(|h| self.pages.contains_key(h));
        }
        (start..end)
            .step_by(PAGE_SIZE as usize)
            .all(|va| self.entry(va).is_some())
    }

    /// Removes `[start, end)` (the tail included).
    fn remove(&mut self, start: u64, end: u64) {
        self.pages.retain(|&va, _| va < start || va >= end);
        if self.tail && end > TAIL {
            if start <= TAIL && end == VM_MAX_USER_ADDRESS {
                self.tail = false;
                self.holes.clear();
            } else {
                self.holes
                    .extend((start.max(TAIL)..end).step_by(PAGE_SIZE as usize));
            }
        }
    }

    /// The registry's first fit: mapped ranges, in order, are the pages
    /// and the tail's pieces between holes.
    fn find_free(&self, size: u64, from: u64) -> Option<u64> {
        let mut used: Vec<(u64, u64)> = self.pages.keys().map(|&va| (va, va + PAGE_SIZE)).collect();
        if self.tail {
            let mut at = TAIL;
            for &h in &self.holes {
                used.push((at, h));
                at = h + PAGE_SIZE;
            }
            used.push((at, VM_MAX_USER_ADDRESS));
        }
        used.sort();
        let mut cand = from;
        for (s, e) in used {
            if e <= cand || s >= e {
                continue;
            }
            if s >= cand + size {
                break;
            }
            cand = e;
        }
        (cand + size <= VM_MAX_USER_ADDRESS).then_some(cand)
    }
}

struct Model {
    spaces: BTreeMap<u64, MSpace>,
    kmem: Vec<u8>,
    capacity: u64,
    /// The registry's shadow allowance.
    shadow: u64,
}

impl Model {
    /// Pool pages promised: each space's charge and its host state.
    fn used(&self) -> u64 {
        self.spaces
            .values()
            .map(|s| s.charge(self.shadow) + HOST_STATE)
            .sum()
    }

    /// `new` replaces space `id` (an mmap) if the pool can hold the
    /// growth of its mapping charge: the registry reserves that before it
    /// frees the frames the mapping replaces.
    fn replace_space(&mut self, id: u64, new: MSpace) -> Result<(), Errno> {
        let old = self.spaces[&id].mapping_charge(self.shadow);
        let grown = new.mapping_charge(self.shadow).saturating_sub(old);
        if !self.fits(0, grown) {
            return Err(Errno::ENOMEM);
        }
        self.spaces.insert(id, new);
        Ok(())
    }

    /// Charges a frame for page `va` of space `id` if it needs one and
    /// holds none: `ENOMEM` when the pool is full (pages are charged when
    /// touched).
    fn touch(&mut self, id: u64, va: u64) -> Result<(), Errno> {
        let full = !self.fits(0, 1);
        let Some(p) = self.spaces.get_mut(&id).and_then(|s| s.pages.get_mut(&va)) else {
            return Ok(());
        };
        if !MSpace::needs_frame(p) || p.held {
            return Ok(());
        }
        if full {
            return Err(Errno::ENOMEM);
        }
        p.held = true;
        Ok(())
    }

    fn content(&self, p: &MPage) -> Vec<u8> {
        if let Some(d) = &p.data {
            return d.clone();
        }
        match p.kind {
            Kind::Anon => vec![0; PAGE_SIZE as usize],
            Kind::Shared(g) | Kind::Private(g) => {
                self.kmem[g as usize..(g + PAGE_SIZE) as usize].to_vec()
            }
            Kind::Vpt(_) => unreachable!("VPAGETABLE pages read through the guest tables"),
        }
    }

    /// The kernel page behind VPAGETABLE page `va`, if the guest's tables
    /// are named and map it.
    fn vpt_page(kind: Kind, va: u64) -> Option<Option<u64>> {
        match kind {
            Kind::Vpt(rooted) => Some(rooted.then(|| guest_entry(va)).flatten().map(|(g, _)| g)),
            _ => None,
        }
    }

    fn fits(&self, replacing: u64, new_charge: u64) -> bool {
        self.used() - replacing + new_charge <= self.capacity
    }

    /// Runs `op` on the model; the result as the registry reports it.
    fn apply(&mut self, op: &Op) -> Result<u64, Errno> {
        match *op {
            Op::Create { id, bad } => {
                if id == 0 || bad {
                    return Err(Errno::EINVAL);
                }
                if self.spaces.contains_key(&id) {
                    return Err(Errno::EEXIST);
                }
                if !self.fits(0, 1 + HOST_STATE) {
                    return Err(Errno::ENOMEM);
                }
                self.spaces.insert(id, MSpace::default());
                Ok(0)
            }
            Op::Destroy { id } => self.spaces.remove(&id).map(|_| 0).ok_or(Errno::ENOENT),
            Op::Mmap {
                id,
                page,
                pages,
                short,
                prot,
                kind,
                fixed,
            } => {
                let space = self.spaces.get(&id).ok_or(Errno::ENOENT)?;
                if prot > 7 {
                    return Err(Errno::EINVAL);
                }
                if matches!(kind, Kind::Vpt(_)) && prot & RW_ != RW_ {
                    return Err(Errno::EINVAL);
                }
                let size = pages * PAGE_SIZE;
                let hint = WBASE + page * PAGE_SIZE;
                let start = if fixed {
                    hint
                } else {
                    space
                        .find_free(size, hint.max(MMAP_BASE))
                        .or_else(|| space.find_free(size, VM_MIN_USER_ADDRESS))
                        .ok_or(Errno::ENOMEM)?
                };
                let _ = short;
                let mut new = space.clone();
                for i in 0..pages {
                    let kind = match kind {
                        Kind::Anon => Kind::Anon,
                        Kind::Shared(k) => Kind::Shared(SHARED_AREA + (k + i) * PAGE_SIZE),
                        Kind::Private(k) => Kind::Private(PRIVATE_AREA + (k + i) * PAGE_SIZE),
                        Kind::Vpt(rooted) => Kind::Vpt(rooted),
                    };
                    new.pages.insert(
                        start + i * PAGE_SIZE,
                        MPage {
                            prot,
                            kind,
                            data: None,
                            held: false,
                        },
                    );
                }
                self.replace_space(id, new)?;
                Ok(start)
            }
            Op::Munmap { id, page, sub, len } => {
                let space = self.spaces.get_mut(&id).ok_or(Errno::ENOENT)?;
                let start = WBASE + page * PAGE_SIZE;
                let end = (start + sub + len).next_multiple_of(PAGE_SIZE);
                if end == start {
                    return Ok(0);
                }
                if !space.covered(start, end) {
                    return Err(Errno::EINVAL);
                }
                space.remove(start, end);
                Ok(0)
            }
            Op::Mprotect {
                id,
                page,
                sub,
                len,
                prot,
            } => {
                let space = self.spaces.get_mut(&id).ok_or(Errno::ENOENT)?;
                if sub != 0 || prot > 7 {
                    return Err(Errno::EINVAL);
                }
                let start = WBASE + page * PAGE_SIZE;
                let end = (start + len).next_multiple_of(PAGE_SIZE);
                if end == start {
                    return Ok(0);
                }
                if !space.covered(start, end) {
                    return Err(Errno::ENOMEM);
                }
                for (_, p) in space.pages.range_mut(start..end) {
                    p.prot = prot;
                }
                Ok(0)
            }
            Op::Mcontrol {
                id,
                page,
                sub,
                len,
                behav,
            } => {
                let space = self.spaces.get_mut(&id).ok_or(Errno::ENOENT)?;
                if behav > MADV_CONTROL_END {
                    return Err(Errno::EINVAL);
                }
                let addr = WBASE + page * PAGE_SIZE + sub;
                let start = addr & !(PAGE_SIZE - 1);
                let end = (addr + len).next_multiple_of(PAGE_SIZE);
                if behav == MADV_SETMAP {
                    let all_vpt = start < end
                        && space.covered(start, end)
                        && space
                            .pages
                            .range(start..end)
                            .all(|(_, p)| matches!(p.kind, Kind::Vpt(_)));
                    if !all_vpt {
                        return Err(Errno::EINVAL);
                    }
                    for (_, p) in space.pages.range_mut(start..end) {
                        p.kind = Kind::Vpt(true);
                    }
                    return Ok(0);
                }
                if behav == MADV_DONTNEED || behav == MADV_FREE {
                    for (_, p) in space.pages.range_mut(start..end) {
                        p.data = None;
                        p.held = false;
                    }
                }
                if behav == MADV_WILLNEED {
                    // Every page brought in, in order, until the pool is
                    // short (those before stay in).
                    let pages: Vec<u64> = space
                        .pages
                        .range(start..end)
                        .filter(|(_, p)| p.prot != PROT_NONE)
                        .map(|(&va, _)| va)
                        .collect();
                    for va in pages {
                        self.touch(id, va)?;
                    }
                }
                Ok(0)
            }
            Op::Pwrite { id, off, len, seed } => {
                self.spaces.get(&id).ok_or(Errno::ENOENT)?;
                let va0 = WBASE + off;
                let mut done = 0;
                while done < len {
                    let va = va0 + done;
                    let page = va & !(PAGE_SIZE - 1);
                    // A short pool ends the copy (ENOMEM if nothing moved).
                    match self.touch(id, page) {
                        Err(_) if done > 0 => break,
                        r => r?,
                    }
                    let Model { spaces, kmem, .. } = self;
                    let space = spaces.get_mut(&id).ok_or(Errno::ENOENT)?;
                    let Some(p) = space.pages.get_mut(&page) else {
                        break;
                    };
                    let n = (PAGE_SIZE - (va - page)).min(len - done);
                    if let Some(g) = Model::vpt_page(p.kind, page) {
                        let Some(g) = g else { break };
                        let at = (g + va - page) as usize;
                        let from = (KBUF + done) as usize;
                        kmem.copy_within(from..from + n as usize, at);
                        done += n;
                        continue;
                    }
                    for i in 0..n {
                        let byte = kmem[(KBUF + done + i) as usize];
                        let at = (va - page + i) as usize;
                        match p.kind {
                            Kind::Shared(g) => kmem[g as usize + at] = byte,
                            Kind::Anon => {
                                p.data.get_or_insert_with(|| vec![0; PAGE_SIZE as usize])[at] = byte
                            }
                            Kind::Private(g) => {
                                let copy = kmem[g as usize..(g + PAGE_SIZE) as usize].to_vec();
                                p.data.get_or_insert(copy)[at] = byte;
                            }
                            Kind::Vpt(_) => unreachable!(),
                        }
                    }
                    done += n;
                }
                let _ = seed;
                Ok(done)
            }
            Op::Pread { id, off, len } => {
                self.spaces.get(&id).ok_or(Errno::ENOENT)?;
                let va0 = WBASE + off;
                let mut done = 0;
                let mut out = Vec::new();
                while done < len {
                    let va = va0 + done;
                    let page = va & !(PAGE_SIZE - 1);
                    // Reading brings the page in too.
                    match self.touch(id, page) {
                        Err(_) if done > 0 => break,
                        r => r?,
                    }
                    let space = &self.spaces[&id];
                    let Some(p) = space.pages.get(&page) else {
                        break;
                    };
                    let n = (PAGE_SIZE - (va - page)).min(len - done);
                    let content = match Model::vpt_page(p.kind, page) {
                        Some(Some(g)) => self.kmem[g as usize..(g + PAGE_SIZE) as usize].to_vec(),
                        Some(None) => break,
                        None => self.content(p),
                    };
                    out.extend_from_slice(&content[(va - page) as usize..(va - page + n) as usize]);
                    done += n;
                }
                self.kmem[KBUF as usize..KBUF as usize + out.len()].copy_from_slice(&out);
                Ok(done)
            }
            Op::Fault { id, off, code } => {
                let space = self.spaces.get(&id).ok_or(Errno::ENOENT)?;
                let page = (WBASE + off) & !(PAGE_SIZE - 1);
                let ok = space.entry(page).is_some_and(|p| {
                    let guest_ok = match Model::vpt_page(p.kind, page) {
                        None => true,
                        Some(None) => false,
                        Some(Some(_)) => {
                            code & pf::W == 0 || guest_entry(page).is_some_and(|(_, w)| w)
                        }
                    };
                    p.prot != PROT_NONE
                        && (code & pf::W == 0 || p.prot & PROT_WRITE != 0)
                        && (code & pf::I == 0 || p.prot & PROT_EXEC != 0)
                        && guest_ok
                });
                if ok {
                    self.touch(id, page)?;
                }
                Ok(ok as u64)
            }
            Op::Clone { src, dst } => {
                if dst == 0 {
                    return Err(Errno::EINVAL);
                }
                if self.spaces.contains_key(&dst) {
                    return Err(Errno::EEXIST);
                }
                let copy = self.spaces.get(&src).ok_or(Errno::ENOENT)?.clone();
                if !self.fits(0, copy.charge(self.shadow) + HOST_STATE) {
                    return Err(Errno::ENOMEM);
                }
                self.spaces.insert(dst, copy);
                Ok(0)
            }
            Op::MmapTail { id } => {
                let mut new = self.spaces.get(&id).ok_or(Errno::ENOENT)?.clone();
                new.remove(TAIL, VM_MAX_USER_ADDRESS);
                new.tail = true;
                self.replace_space(id, new)?;
                Ok(TAIL)
            }
            Op::MunmapTail { id } => {
                let space = self.spaces.get_mut(&id).ok_or(Errno::ENOENT)?;
                if !space.covered(TAIL, VM_MAX_USER_ADDRESS) {
                    return Err(Errno::EINVAL);
                }
                space.remove(TAIL, VM_MAX_USER_ADDRESS);
                Ok(0)
            }
            Op::MmapInTail { id, k, pages, vpt } => {
                let mut new = self.spaces.get(&id).ok_or(Errno::ENOENT)?.clone();
                let start = tail_addr(k, 0);
                for va in (start..start + pages * PAGE_SIZE).step_by(PAGE_SIZE as usize) {
                    new.holes.remove(&va);
                    let kind = if vpt { Kind::Vpt(true) } else { Kind::Anon };
                    let page = MPage {
                        prot: RW_,
                        kind,
                        data: None,
                        held: false,
                    };
                    new.pages.insert(va, page);
                }
                self.replace_space(id, new)?;
                Ok(start)
            }
            Op::MunmapInTail { id, k, pages } => {
                let space = self.spaces.get_mut(&id).ok_or(Errno::ENOENT)?;
                let start = tail_addr(k, 0);
                let end = start + pages * PAGE_SIZE;
                if !space.covered(start, end) {
                    return Err(Errno::EINVAL);
                }
                space.remove(start, end);
                Ok(0)
            }
            Op::FaultTail { id, k, page, code } => {
                let space = self.spaces.get(&id).ok_or(Errno::ENOENT)?;
                // Every page of the tail is mapped read-write by the guest's
                // tables, and every page mapped in it is read-write.
                let va = tail_addr(k, page);
                let ok = space.entry(va).is_some() && code & pf::I == 0;
                if ok {
                    self.touch(id, va)?;
                }
                Ok(ok as u64)
            }
        }
    }
}

/// Runs `op` on the registry.
fn run(reg: &mut VmspaceRegistry, mem: &GuestMemoryMmap, op: &Op) -> Result<u64, Errno> {
    match *op {
        Op::Create { id, bad } => reg.create(id, bad as u64, 0).map(|_| 0),
        Op::Destroy { id } => reg.destroy(id).map(|_| 0),
        Op::Mmap {
            id,
            page,
            pages,
            short,
            prot,
            kind,
            fixed,
        } => {
            let addr = WBASE + page * PAGE_SIZE;
            let len = pages * PAGE_SIZE - short;
            let mut flags = if fixed { MAP_FIXED } else { 0 };
            let (fd, off) = match kind {
                Kind::Anon => {
                    flags |= MAP_ANON | MAP_PRIVATE;
                    (FD_NONE, 0)
                }
                Kind::Shared(k) => {
                    flags |= MAP_SHARED;
                    (PHYSMEM_FD, SHARED_AREA + k * PAGE_SIZE)
                }
                Kind::Private(k) => {
                    flags |= MAP_PRIVATE;
                    (PHYSMEM_FD, PRIVATE_AREA + k * PAGE_SIZE)
                }
                Kind::Vpt(_) => {
                    flags |= MAP_SHARED | MAP_VPAGETABLE;
                    (PHYSMEM_FD, 0)
                }
            };
            let r = reg.mmap(id, addr, len, prot, flags, fd, off);
            if let (Ok(start), Kind::Vpt(true)) = (r, kind) {
                reg.mcontrol(id, start, len, MADV_SETMAP, GROOT)?;
            }
            r
        }
        Op::Munmap { id, page, sub, len } => reg
            .munmap(id, WBASE + page * PAGE_SIZE + sub, len)
            .map(|_| 0),
        Op::Mprotect {
            id,
            page,
            sub,
            len,
            prot,
        } => reg
            .mprotect(id, WBASE + page * PAGE_SIZE + sub, len, prot)
            .map(|_| 0),
        Op::Mcontrol {
            id,
            page,
            sub,
            len,
            behav,
        } => reg
            .mcontrol(
                id,
                WBASE + page * PAGE_SIZE + sub,
                len,
                behav,
                if behav == MADV_SETMAP { GROOT } else { 0 },
            )
            .map(|_| 0),
        Op::Pwrite { id, off, len, .. } => reg.pwrite(id, KBUF, len, WBASE + off).map(|n| n as u64),
        Op::Pread { id, off, len } => reg.pread(id, KBUF, len, WBASE + off).map(|n| n as u64),
        Op::Fault { id, off, code } => reg
            .handle_fault(id, WBASE + off, code)
            .map(|o| (o == FaultOutcome::Resolved) as u64),
        Op::Clone { src, dst } => reg.clone_vmspace(src, dst).map(|_| 0),
        Op::MmapTail { id } => {
            let len = VM_MAX_USER_ADDRESS - TAIL;
            let flags = MAP_SHARED | MAP_FIXED | MAP_VPAGETABLE;
            let r = reg.mmap(id, TAIL, len, RW_, flags, PHYSMEM_FD, 0);
            if r.is_ok() {
                reg.mcontrol(id, TAIL, len, MADV_SETMAP, GROOT)?;
            }
            r
        }
        Op::MunmapTail { id } => reg.munmap(id, TAIL, VM_MAX_USER_ADDRESS - TAIL).map(|_| 0),
        Op::MmapInTail { id, k, pages, vpt } => {
            let (addr, len) = (tail_addr(k, 0), pages * PAGE_SIZE);
            let r = if vpt {
                let flags = MAP_SHARED | MAP_FIXED | MAP_VPAGETABLE;
                reg.mmap(id, addr, len, RW_, flags, PHYSMEM_FD, 0)
            } else {
                let flags = MAP_ANON | MAP_PRIVATE | MAP_FIXED;
                reg.mmap(id, addr, len, RW_, flags, FD_NONE, 0)
            };
            if r.is_ok() && vpt {
                reg.mcontrol(id, addr, len, MADV_SETMAP, GROOT)?;
            }
            r
        }
        Op::MunmapInTail { id, k, pages } => reg
            .munmap(id, tail_addr(k, 0), pages * PAGE_SIZE)
            .map(|_| 0),
        Op::FaultTail { id, k, page, code } => reg
            .handle_fault(id, tail_addr(k, page), code)
            .map(|o| (o == FaultOutcome::Resolved) as u64),
    }
    .inspect(|_| {
        let _ = mem;
    })
}

/// Checks every present leaf of every vmspace against the model.
fn check_tables(
    reg: &VmspaceRegistry,
    mem: &GuestMemoryMmap,
    model: &Model,
) -> Result<(), TestCaseError> {
    for (&id, space) in &model.spaces {
        let root = reg
            .root(id)
            .ok_or_else(|| TestCaseError::fail(format!("{id} missing")))?;
        for (va, leaf) in check_tree(mem, reg, root) {
            let p = space
                .entry(va)
                .ok_or_else(|| TestCaseError::fail(format!("{id}: leaf at {va:#x} not mapped")))?;
            prop_assert!(p.prot != PROT_NONE, "{id}: PROT_NONE page {va:#x} present");
            if let Some(g) = Model::vpt_page(p.kind, va) {
                // A shadow leaf: the guest's page, its permissions and the
                // entry's together.
                let g = g.ok_or_else(|| TestCaseError::fail(format!("{id}: stale {va:#x}")))?;
                let writable = guest_entry(va).is_some_and(|(_, w)| w);
                prop_assert_eq!(leaf & ADDR, g, "{}: page at {:#x}", id, va);
                prop_assert_eq!(
                    leaf & RW != 0,
                    writable && p.prot & PROT_WRITE != 0,
                    "{}: shadow RW at {:#x}",
                    id,
                    va
                );
                prop_assert_eq!(leaf & NX == 0, p.prot & PROT_EXEC != 0);
                continue;
            }
            prop_assert_eq!(
                leaf & RW != 0,
                p.prot & PROT_WRITE != 0,
                "{}: RW at {:#x}",
                id,
                va
            );
            prop_assert_eq!(
                leaf & NX == 0,
                p.prot & PROT_EXEC != 0,
                "{}: NX at {:#x}",
                id,
                va
            );
            let mut frame = vec![0u8; PAGE_SIZE as usize];
            mem.read_slice(&mut frame, GuestAddress(leaf & ADDR))
                .unwrap();
            prop_assert!(frame == model.content(&p), "{}: contents at {:#x}", id, va);
        }
    }
    Ok(())
}

fn run_case(ops: &[Op], shadow: u64) -> Result<(), TestCaseError> {
    let (mem, mut reg) = setup(POOL_PAGES);
    reg.set_shadow_table_pages(shadow).unwrap();
    // One page per fault: the model knows which pages are touched, so it
    // knows which are charged (fault-around has tests of its own).
    reg.set_fault_around(1);
    build_guest_tables(&mem);
    let baseline = reg.pages_in_use() as u64;
    let mut kmem = vec![0u8; KMEM as usize];
    mem.read_slice(&mut kmem, GuestAddress(0)).unwrap();
    let mut model = Model {
        spaces: BTreeMap::new(),
        kmem,
        capacity: POOL_PAGES - baseline,
        shadow,
    };
    // Start with three vmspaces, so that most operations find theirs, and
    // a tail in the first, so that most tail faults find one.
    let mut prefix: Vec<Op> = (1..4).map(|id| Op::Create { id, bad: false }).collect();
    prefix.push(Op::MmapTail { id: 1 });
    for (step, op) in prefix.iter().chain(ops).enumerate() {
        if let Op::Pwrite { len, seed, .. } = *op {
            let bytes: Vec<u8> = (0..len)
                .map(|i| seed.wrapping_add((i * 31 % 253) as u8))
                .collect();
            mem.write_slice(&bytes, GuestAddress(KBUF)).unwrap();
            model.kmem[KBUF as usize..(KBUF + len) as usize].copy_from_slice(&bytes);
        }
        let want = model.apply(op);
        let got = run(&mut reg, &mem, op);
        prop_assert_eq!(got, want, "step {}: {:?}", step, op);
        if let Op::Pread { len, .. } = *op {
            let mut buf = vec![0u8; len as usize];
            mem.read_slice(&mut buf, GuestAddress(KBUF)).unwrap();
            prop_assert!(
                buf == model.kmem[KBUF as usize..(KBUF + len) as usize],
                "step {step}: pread bytes"
            );
        }
        if let Err(e) = reg.audit() {
            return Err(TestCaseError::fail(format!(
                "step {step} {op:?}: audit: {e}"
            )));
        }
        for (&id, space) in &model.spaces {
            prop_assert_eq!(
                reg.charged_pages(id),
                Some(space.charge(shadow)),
                "step {}: charge of {}",
                step,
                id
            );
        }
        prop_assert!(reg.pages_in_use() as u64 <= baseline + model.used());
        check_tables(&reg, &mem, &model)?;
    }
    // Every page reads back what the model says, through pread.
    for (&id, space) in &model.spaces {
        for (&va, p) in &space.pages {
            if Model::vpt_page(p.kind, va).is_some() {
                continue; // compared through the kernel's pages below
            }
            if MSpace::needs_frame(p) && !p.held {
                // Never touched: no frame (the audit checked), and reading
                // would charge one.
                prop_assert!(p.data.is_none());
                continue;
            }
            prop_assert_eq!(reg.pread(id, KBUF, PAGE_SIZE, va), Ok(PAGE_SIZE as usize));
            let mut buf = vec![0u8; PAGE_SIZE as usize];
            mem.read_slice(&mut buf, GuestAddress(KBUF)).unwrap();
            prop_assert!(
                buf == model.content(p),
                "final contents of {} at {:#x}",
                id,
                va
            );
        }
    }
    let mut shared = vec![0u8; (AREA_PAGES * PAGE_SIZE) as usize];
    mem.read_slice(&mut shared, GuestAddress(SHARED_AREA))
        .unwrap();
    prop_assert!(
        shared == model.kmem[SHARED_AREA as usize..(SHARED_AREA + AREA_PAGES * PAGE_SIZE) as usize]
    );
    let mut vpt = vec![0u8; (8 * PAGE_SIZE) as usize];
    mem.read_slice(&mut vpt, GuestAddress(VPT_AREA)).unwrap();
    prop_assert!(vpt == model.kmem[VPT_AREA as usize..(VPT_AREA + 8 * PAGE_SIZE) as usize]);
    prop_assert!(reg.teardown_all().is_empty());
    prop_assert_eq!(reg.pages_in_use() as u64, baseline);
    prop_assert_eq!(reg.pool().reserved_pages(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn registry_agrees_with_the_model(ops in prop::collection::vec(op(), 1..60), shadow in 3..8u64) {
        run_case(&ops, shadow)?;
    }
}
