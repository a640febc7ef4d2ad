//! The vCPU as the run loop sees it: one `KVM_RUN` at a time, the synced
//! registers of whatever context is on it, its FPU state, and the one
//! VM-wide operation the loop needs (dropping KVM's cached translations).
//! [`KvmVcpu`] is the real one; the run loop is generic over [`Vcpu`], so
//! its exit handlers are unit-tested with a scripted vCPU and no KVM.

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_sregs, kvm_userspace_memory_region};
use kvm_ioctls::{Kvm, SyncReg, VcpuExit, VcpuFd, VmFd};

use crate::error::{kvm_err, Error};

/// Why `KVM_RUN` returned, copied out of `kvm_run` so handlers may borrow
/// the vCPU again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// `out` of `len` bytes (`value` holds up to the first 4).
    Out {
        /// The port.
        port: u16,
        /// Access width in bytes.
        len: usize,
        /// The value written (little-endian, zero-extended).
        value: u32,
    },
    /// `in` (answered with all ones).
    In {
        /// The port.
        port: u16,
    },
    /// An access to guest-physical memory with no slot behind it.
    Mmio {
        /// The address.
        addr: u64,
        /// A write (else a read, answered with all ones).
        write: bool,
    },
    /// Triple fault.
    Shutdown,
    /// KVM could not emulate an instruction.
    InternalError {
        /// KVM's suberror.
        suberror: u32,
    },
    /// KVM could not enter the guest.
    FailEntry(u64),
    /// A signal interrupted `KVM_RUN` (the slice timer, or a kick).
    Interrupted,
    /// Anything else, described.
    Other(String),
}

/// What the run loop needs of its vCPU.
pub trait Vcpu {
    /// Runs the vCPU until its next exit.
    fn run(&mut self) -> Result<Exit, Error>;
    /// The registers of the context on the vCPU (synced by the last run,
    /// or as [`Vcpu::set_context`] left them).
    fn context(&self) -> (kvm_regs, kvm_sregs);
    /// Installs a whole register context for the next run.
    fn set_context(&mut self, regs: &kvm_regs, sregs: &kvm_sregs);
    /// The registers before the first run, read by ioctl (the synced copy
    /// is filled only by the first `KVM_RUN`).
    fn initial_context(&self) -> Result<(kvm_regs, kvm_sregs), Error>;
    /// Whether an exception was raised but not yet delivered.
    fn exception_pending(&self) -> bool;
    /// The x87/SSE registers (for the debugger).
    fn fpu(&self) -> Option<kvm_fpu>;
    /// The guest TSC's frequency in kHz (KVM_GET_TSC_KHZ), if KVM says.
    fn tsc_khz(&self) -> Option<u32>;
    /// The guest's TSC now (its IA32_TSC MSR), if it can be read.
    fn guest_tsc(&self) -> Option<u64>;
    /// Makes KVM forget every cached translation of guest page tables.
    fn drop_shadow_translations(&mut self) -> Result<(), Error>;
    /// Makes sure the first `bytes` of the host pool are in KVM's memory
    /// slots before the next run (see [`PoolSlots`]).
    fn cover_pool(&mut self, bytes: u64) -> Result<(), Error>;
    /// Finishes, in the context on the vCPU now, whatever KVM left pending
    /// from the last exit, and drops any exception that raised. Called
    /// before a process that made an exit the protocol does not expect is
    /// taken off the vCPU: see [`KvmVcpu`]'s implementation for why.
    fn finish_pending_exit(&mut self) -> Result<(), Error>;
    /// `kvm_run.immediate_exit`, which the slice timer's signal handler
    /// sets; valid as long as the vCPU lives.
    fn immediate_exit(&mut self) -> *mut u8;
}

/// The KVM vCPU, with the VM it belongs to.
pub struct KvmVcpu {
    /// Kept open for the VM's lifetime.
    pub(crate) _kvm: Kvm,
    pub(crate) vm: VmFd,
    pub(crate) fd: VcpuFd,
    /// The one-page slot added and deleted again to drop KVM's shadow
    /// state (after the fds: its page outlives the VM).
    pub(crate) flush_slot: FlushSlot,
    /// The pool's slots, added as the pool grows.
    pub(crate) pool_slots: PoolSlots,
    /// KVM offers XSAVE. Without it (QEMU's `qemu64`, older CPUs) CR4 has
    /// no OSXSAVE, and the guest kernel saves processes' x87/SSE state
    /// with FXSAVE.
    pub(crate) xsave: bool,
}

/// A memory slot of one page that nothing maps, only ever added and
/// deleted again: deleting any memory slot makes KVM zap all its shadow
/// pages (`kvm_mmu_zap_all_fast`, KVM's default `KVM_X86_QUIRK_SLOT_ZAP_ALL`),
/// which is how the host drops translations KVM cached from tables the
/// host wrote behind its back (KVM shadows guest tables and learns of
/// changes only through guest writes it traps). Deleting the 1 GiB pool's
/// slot did the same, but every re-registration allocated and zeroed the
/// slot's reverse maps and page-tracking arrays (about 2.5 MB for 1 GiB):
/// a fifth of the host's CPU in a shell loop of dynamic programs.
///
/// Between flushes the slot is absent, so a VM that never flushes (most
/// short runs) never registers it: every change to a VM's memory slots
/// waits for an SRCU grace period (`synchronize_srcu_expedited`), which
/// costs tens of microseconds on an idle host and milliseconds on a
/// loaded one (its kworker waits for a CPU), and boot made three.
pub(crate) struct FlushSlot {
    region: kvm_userspace_memory_region,
}

impl FlushSlot {
    /// Guest-physical address of the page: below the pool, above the
    /// largest RAM (`--memory` ≤ 3 GiB), outside anything the guest can
    /// name (the host builds every table that could map it, and refuses
    /// guest tables that point outside RAM).
    pub(crate) const GPA: u64 = vkernel_abi::layout::POOL_BASE - 4096;

    /// Maps the page that slot `slot` will map while it is added.
    pub(crate) fn new(slot: u32) -> Result<FlushSlot, Error> {
        // SAFETY: a fresh private anonymous mapping of one page; nothing
        // else refers to it.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return Err(Error::Io {
                what: "mapping the flush slot's page",
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(FlushSlot {
            region: kvm_userspace_memory_region {
                slot,
                flags: 0,
                guest_phys_addr: Self::GPA,
                memory_size: 4096,
                userspace_addr: page as u64,
            },
        })
    }

    /// Adds the slot and deletes it again: the deletion makes KVM drop
    /// every shadow page.
    fn cycle(&self, vm: &VmFd) -> Result<(), Error> {
        let mut gone = self.region;
        gone.memory_size = 0;
        // SAFETY: adding the slot registers the page this slot owns, which
        // outlives the VM; deleting it unmaps nothing on the host.
        unsafe {
            vm.set_user_memory_region(self.region)
                .map_err(kvm_err("KVM_SET_USER_MEMORY_REGION (add flush slot)"))?;
            vm.set_user_memory_region(gone)
                .map_err(kvm_err("KVM_SET_USER_MEMORY_REGION (delete flush slot)"))?;
        }
        Ok(())
    }
}

/// The host pool's memory slots. Every slot costs KVM metadata in
/// proportion to its size, allocated and zeroed when the slot is added and
/// freed with the VM: 2.5 MB for a 1 GiB slot (reverse maps and write
/// tracking, 8 and 2 bytes per 4 KiB page), about 1 ms of a boot's CPU
/// time here, for a pool of which a short run touches a few megabytes. So
/// the pool goes into KVM in slots of growing size (64 MiB, then as much
/// again as is covered) as the pool's high-water mark reaches them, before
/// the `KVM_RUN` after the pages were handed out: KVM resolves pool
/// addresses only while the guest runs, and a page is never handed out
/// above the high-water mark. Slots are only ever added (a deletion would
/// zap every shadow page), at most `log2(pool / 64 MiB) + 1` of them.
pub(crate) struct PoolSlots {
    /// Host address of the pool's first byte.
    host: u64,
    /// The whole pool.
    pool_bytes: u64,
    /// Bytes from the pool's start that slots cover.
    covered: u64,
    /// Slot number of the next one added.
    next_slot: u32,
}

impl PoolSlots {
    /// The first slot's size and the granule of every later one (2 MiB
    /// aligned, so KVM may map the pool's huge pages whole).
    const FIRST_BYTES: u64 = 64 << 20;

    /// Slots for the pool at host address `host`, of `pool_bytes`, the
    /// first numbered `first_slot`; none added yet.
    pub(crate) fn new(host: u64, pool_bytes: u64, first_slot: u32) -> PoolSlots {
        PoolSlots {
            host,
            pool_bytes,
            covered: 0,
            next_slot: first_slot,
        }
    }

    /// Where the slots covering `covered` bytes of a `pool_bytes` pool
    /// should end to cover `bytes`: a multiple of 64 MiB, at least twice
    /// what is covered (so slots stay few), at most the pool.
    pub(crate) fn next_end(covered: u64, bytes: u64, pool_bytes: u64) -> u64 {
        let granule = Self::FIRST_BYTES;
        bytes
            .div_ceil(granule)
            .saturating_mul(granule)
            .max(covered.saturating_mul(2))
            .min(pool_bytes)
    }

    /// Adds the first slot (none for an empty pool).
    pub(crate) fn cover_first(&mut self, vm: &VmFd) -> Result<(), Error> {
        self.cover(vm, self.pool_bytes.min(1))
    }

    /// Adds one slot if the first `bytes` of the pool are not all covered.
    pub(crate) fn cover(&mut self, vm: &VmFd, bytes: u64) -> Result<(), Error> {
        if bytes <= self.covered {
            return Ok(());
        }
        let end = Self::next_end(self.covered, bytes, self.pool_bytes);
        if end < bytes {
            return Err(Error::Setup(format!(
                "pool slot for {bytes:#x} bytes of a {:#x}-byte pool",
                self.pool_bytes
            )));
        }
        let region = kvm_userspace_memory_region {
            slot: self.next_slot,
            flags: 0,
            guest_phys_addr: vkernel_abi::layout::POOL_BASE + self.covered,
            memory_size: end - self.covered,
            userspace_addr: self.host + self.covered,
        };
        // SAFETY: `[host, host + pool_bytes)` is the pool's live mapping,
        // owned by the guest memory that outlives the VM's descriptors
        // (`Vm` drops its vCPU first); the range is inside it and overlaps
        // no other slot.
        unsafe { vm.set_user_memory_region(region) }
            .map_err(kvm_err("KVM_SET_USER_MEMORY_REGION (pool)"))?;
        log::debug!(
            "pool slot {}: [{:#x}, {:#x}) of the pool",
            self.next_slot,
            self.covered,
            end
        );
        self.covered = end;
        self.next_slot += 1;
        Ok(())
    }
}

impl Drop for FlushSlot {
    fn drop(&mut self) {
        // SAFETY: the page this slot mapped in `new`; the VM that used it
        // is gone (the slot is dropped after the VM's descriptors).
        unsafe { libc::munmap(self.region.userspace_addr as *mut libc::c_void, 4096) };
    }
}

impl Vcpu for KvmVcpu {
    fn run(&mut self) -> Result<Exit, Error> {
        Ok(match self.fd.run() {
            Ok(VcpuExit::IoOut(port, data)) => {
                let mut v = [0u8; 4];
                let n = data.len().min(4);
                v[..n].copy_from_slice(&data[..n]);
                Exit::Out {
                    port,
                    len: data.len(),
                    value: u32::from_le_bytes(v),
                }
            }
            Ok(VcpuExit::IoIn(port, data)) => {
                data.fill(0xff);
                Exit::In { port }
            }
            Ok(VcpuExit::MmioRead(addr, data)) => {
                data.fill(0xff);
                Exit::Mmio { addr, write: false }
            }
            Ok(VcpuExit::MmioWrite(addr, _)) => Exit::Mmio { addr, write: true },
            Ok(VcpuExit::Shutdown) => Exit::Shutdown,
            Ok(VcpuExit::InternalError) => {
                // SAFETY: KVM filled the `internal` member for this exit
                // reason, and it is plain integers.
                let suberror = unsafe { self.fd.get_kvm_run().__bindgen_anon_1.internal.suberror };
                Exit::InternalError { suberror }
            }
            Ok(VcpuExit::FailEntry(reason, _)) => Exit::FailEntry(reason),
            Ok(VcpuExit::Intr) => Exit::Interrupted,
            Ok(other) => Exit::Other(format!("{other:?}")),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                self.fd.set_kvm_immediate_exit(0);
                Exit::Interrupted
            }
            Err(source) => {
                return Err(Error::Kvm {
                    what: "KVM_RUN",
                    source,
                })
            }
        })
    }

    fn context(&self) -> (kvm_regs, kvm_sregs) {
        let sync = self.fd.sync_regs();
        (sync.regs, sync.sregs)
    }

    fn set_context(&mut self, regs: &kvm_regs, sregs: &kvm_sregs) {
        // Through the synced registers: no extra ioctl.
        let s = self.fd.sync_regs_mut();
        s.regs = *regs;
        s.sregs = *sregs;
        crate::vm::set_tr_type(&mut s.sregs); // KVM on AMD reads TR back as busy
        self.fd.set_sync_dirty_reg(SyncReg::Register);
        self.fd.set_sync_dirty_reg(SyncReg::SystemRegister);
    }

    fn initial_context(&self) -> Result<(kvm_regs, kvm_sregs), Error> {
        let regs = self.fd.get_regs().map_err(kvm_err("KVM_GET_REGS"))?;
        let sregs = self.fd.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?;
        Ok((regs, sregs))
    }

    fn exception_pending(&self) -> bool {
        match self.fd.get_vcpu_events() {
            Ok(ev) => {
                ev.exception.injected != 0 || ev.exception.pending != 0 || ev.nmi.injected != 0
            }
            // Cannot tell: end the slice now, as without the check.
            Err(_) => false,
        }
    }

    fn fpu(&self) -> Option<kvm_fpu> {
        self.fd.get_fpu().ok()
    }

    fn tsc_khz(&self) -> Option<u32> {
        self.fd.get_tsc_khz().ok()
    }

    fn guest_tsc(&self) -> Option<u64> {
        const MSR_IA32_TSC: u32 = 0x10;
        let mut msrs = kvm_bindings::Msrs::from_entries(&[kvm_bindings::kvm_msr_entry {
            index: MSR_IA32_TSC,
            ..Default::default()
        }])
        .ok()?;
        match self.fd.get_msrs(&mut msrs) {
            Ok(1) => Some(msrs.as_slice()[0].data),
            _ => None,
        }
    }

    fn drop_shadow_translations(&mut self) -> Result<(), Error> {
        self.flush_slot.cycle(&self.vm)
    }

    fn cover_pool(&mut self, bytes: u64) -> Result<(), Error> {
        self.pool_slots.cover(&self.vm, bytes)
    }

    fn immediate_exit(&mut self) -> *mut u8 {
        &mut self.fd.get_kvm_run().immediate_exit as *mut u8
    }

    /// KVM finishes an `in`, an `ins`, an MMIO read (and the skip past a
    /// non-string `out`) at the start of the *next* `KVM_RUN`, after it
    /// loaded the registers the host set: in whatever context is on the
    /// vCPU then. Were the guest kernel put back first, a process's `in`
    /// would write the kernel's RAX and move its RIP (when the process
    /// placed it at the kernel's resume address), and an `insb` would
    /// store at the process's RDI through the kernel's page tables. So the
    /// completion is run now, in the process's own context: `KVM_RUN` with
    /// `immediate_exit` set runs it and returns EINTR without entering the
    /// guest. What it writes lands in the process's registers and memory,
    /// which are then discarded or its own; an exception it raises (a
    /// fault storing the `ins` data, single-step after the skip) is
    /// dropped, so it cannot be delivered to the kernel.
    fn finish_pending_exit(&mut self) -> Result<(), Error> {
        // One completion consumes the read-ahead buffer of a string `in`
        // and returns to the guest (EINTR); a further I/O exit means KVM
        // wants more data: answer again, a bounded number of times.
        let mut finished = false;
        for _ in 0..8 {
            self.fd.set_kvm_immediate_exit(1);
            match self.fd.run() {
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                    finished = true;
                    break;
                }
                Ok(VcpuExit::IoIn(_, data)) | Ok(VcpuExit::MmioRead(_, data)) => data.fill(0xff),
                Ok(_) => {}
                Err(source) => {
                    self.fd.set_kvm_immediate_exit(0);
                    return Err(Error::Kvm {
                        what: "KVM_RUN (finishing a process's exit)",
                        source,
                    });
                }
            }
        }
        self.fd.set_kvm_immediate_exit(0);
        if !finished {
            return Err(Error::Setup(
                "KVM kept asking for I/O data for a process's instruction".into(),
            ));
        }
        let mut ev = self
            .fd
            .get_vcpu_events()
            .map_err(kvm_err("KVM_GET_VCPU_EVENTS"))?;
        if ev.exception.injected != 0 || ev.exception.pending != 0 {
            ev.exception.injected = 0;
            ev.exception.pending = 0;
            ev.exception_has_payload = 0;
            ev.exception_payload = 0;
            self.fd
                .set_vcpu_events(&ev)
                .map_err(kvm_err("KVM_SET_VCPU_EVENTS"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::PoolSlots;

    const MIB: u64 = 1 << 20;

    #[test]
    fn pool_slots_start_at_64_mib_and_double_up_to_the_pool() {
        let next = PoolSlots::next_end;
        // A boot's few pages: one 64 MiB slot.
        assert_eq!(next(0, 4096, 1024 * MIB), 64 * MIB);
        // Growth doubles what is covered...
        assert_eq!(next(64 * MIB, 64 * MIB + 4096, 1024 * MIB), 128 * MIB);
        assert_eq!(next(128 * MIB, 129 * MIB, 1024 * MIB), 256 * MIB);
        // ...or jumps to what was handed out, in 64 MiB steps.
        assert_eq!(next(64 * MIB, 300 * MIB, 1024 * MIB), 320 * MIB);
        // Never past the pool, whatever its size.
        assert_eq!(next(512 * MIB, 513 * MIB, 1000 * MIB), 1000 * MIB);
        assert_eq!(next(0, 4096, 8 * MIB), 8 * MIB);
        // So at most log2(pool / 64 MiB) + 1 slots for a pool used whole.
        let (mut covered, mut slots) = (0, 0);
        while covered < 1024 * MIB {
            covered = next(covered, covered + 4096, 1024 * MIB);
            slots += 1;
        }
        assert_eq!(slots, 5);
    }
}
