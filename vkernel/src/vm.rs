//! The KVM VM: guest memory (kernel RAM at 0, the host pool at 4 GiB), the
//! guest kernel's address space with the trap area, and the one vCPU set up
//! in 64-bit long mode at the kernel's entry point, in ring 3. [`Guest`] is
//! the memory half, without KVM: the run loop's unit tests build one on
//! plain memory.

use kvm_bindings::{
    kvm_msr_entry, kvm_segment, kvm_userspace_memory_region, Msrs, KVM_MAX_CPUID_ENTRIES,
};
use kvm_ioctls::{Kvm, SyncReg, VcpuFd};
use vkernel_abi::{layout, rflags, selector};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmspace::{KernelRam, VmspaceRegistry};

use crate::error::{kvm_err, Error};
use crate::trap_area::{self, Access};
use crate::vcpu::{FlushSlot, KvmVcpu, PoolSlots};

/// Control-register and EFER bits used below.
mod bits {
    pub const CR0_PE: u64 = 1 << 0;
    pub const CR0_MP: u64 = 1 << 1;
    pub const CR0_ET: u64 = 1 << 4;
    pub const CR0_NE: u64 = 1 << 5;
    pub const CR0_WP: u64 = 1 << 16;
    pub const CR0_PG: u64 = 1 << 31;
    pub const CR4_PAE: u64 = 1 << 5;
    pub const CR4_OSFXSR: u64 = 1 << 9;
    pub const CR4_OSXMMEXCPT: u64 = 1 << 10;
    pub const CR4_OSXSAVE: u64 = 1 << 18;
    pub const EFER_SCE: u64 = 1 << 0;
    pub const EFER_LME: u64 = 1 << 8;
    pub const EFER_LMA: u64 = 1 << 10;
    pub const EFER_NXE: u64 = 1 << 11;
    pub const MSR_STAR: u32 = 0xc000_0081;
    pub const MSR_LSTAR: u32 = 0xc000_0082;
    pub const MSR_CSTAR: u32 = 0xc000_0083;
    pub const MSR_SFMASK: u32 = 0xc000_0084;
}

/// What the VM is built from: memory sizes and the KVM device.
#[derive(Clone, Debug)]
pub struct MemoryConfig {
    /// Guest kernel RAM, `[0, ram_bytes)`.
    pub ram_bytes: u64,
    /// Host pool, `[POOL_BASE, POOL_BASE + pool_bytes)`.
    pub pool_bytes: u64,
    /// The KVM device (normally /dev/kvm).
    pub kvm_path: std::path::PathBuf,
    /// Start [`crate::teardown`]'s helper as soon as the vCPU exists (on
    /// whichever thread makes it): a process that ends with its one VM.
    pub teardown_helper: bool,
}

/// The VM: its vCPU (with the VM's KVM handles) and the guest's memory.
/// The vCPU comes first so that KVM lets go of the memory before it is
/// unmapped.
pub struct Vm {
    /// The single vCPU.
    pub vcpu: KvmVcpu,
    /// Guest memory, the vmspaces and the kernel's address space.
    pub guest: Guest,
    /// The helper that destroys the VM after the process has exited, if
    /// [`MemoryConfig::teardown_helper`] asked for it and it could start.
    pub teardown: Option<crate::teardown::Teardown>,
}

/// Guest memory as the run loop uses it: RAM and pool, the vmspaces, the
/// guest kernel's address space and the trap area. No KVM in it.
pub struct Guest {
    /// All guest memory (RAM and pool), for the host's own addresses.
    pub mem: GuestMemoryMmap,
    /// Guest-kernel RAM: every address the guest names goes through it.
    pub ram: KernelRam,
    /// The vmspaces and the pool they live in.
    pub registry: VmspaceRegistry,
    /// Root page table of the guest kernel's address space.
    pub kernel_cr3: u64,
    /// Guest-physical address of each trap-area page (index = page).
    pub trap_pages: Vec<u64>,
}

impl Guest {
    /// The registry over `mem` (RAM `[0, ram_bytes)`, the pool at
    /// `POOL_BASE`) and the kernel's address space built in the pool.
    pub fn new(mem: GuestMemoryMmap, ram_bytes: u64, pool_bytes: u64) -> Result<Guest, Error> {
        let mut registry =
            VmspaceRegistry::new(mem.clone(), ram_bytes, pool_bytes).map_err(|source| {
                Error::Vmspace {
                    what: "setting up the host pool",
                    source,
                }
            })?;
        let (kernel_cr3, trap_pages) = build_kernel_address_space(&mem, &mut registry, ram_bytes)?;
        Ok(Guest {
            ram: registry.ram().clone(),
            mem,
            registry,
            kernel_cr3,
            trap_pages,
        })
    }

    /// Reads `buf.len()` bytes at trap-area virtual address `va` (host-owned
    /// pages, so no guest page-table walk is involved).
    pub fn read_trap_area(&self, va: u64, buf: &mut [u8]) -> bool {
        let Some(off) = va.checked_sub(layout::TRAP_AREA_BASE) else {
            return false;
        };
        let page = (off / layout::PAGE_SIZE) as usize;
        let in_page = off % layout::PAGE_SIZE;
        if in_page + buf.len() as u64 > layout::PAGE_SIZE {
            return false;
        }
        match self.trap_pages.get(page) {
            Some(&gpa) => self
                .mem
                .read_slice(buf, GuestAddress(gpa + in_page))
                .is_ok(),
            None => false,
        }
    }

    /// How much guest memory (RAM and pool) is resident on the host, in KiB.
    pub fn resident_kib(&self) -> u64 {
        let mut pages = 0u64;
        for region in self.mem.iter() {
            let Ok(host) = self.mem.get_host_address(region.start_addr()) else {
                continue;
            };
            let len = region.len() as usize;
            let mut vec = vec![0u8; len.div_ceil(4096)];
            // SAFETY: `host..host+len` is a live mapping owned by self.mem and
            // `vec` has one byte per page of it.
            if unsafe { libc::mincore(host as *mut libc::c_void, len, vec.as_mut_ptr()) } == 0 {
                pages += vec.iter().filter(|&&b| b & 1 != 0).count() as u64;
            }
        }
        pages * 4
    }
}

impl Vm {
    /// Opens KVM, creates the VM, its memory, the kernel address space and
    /// the vCPU (registers not yet set: see [`Vm::enter_kernel`]).
    pub fn new(cfg: &MemoryConfig) -> Result<Vm, Error> {
        Vm::prepare(&cfg.kvm_path)?.start(cfg)?.finish()
    }

    /// Opens KVM, makes the VM and starts a thread on the rest of the
    /// KVM side (the supported CPUID; the vCPU with it, MSRs and XCR0 and
    /// the memory slots once [`VmPrep::start`] has mapped the memory), so
    /// that it runs while this thread reads the inputs, maps memory,
    /// builds the kernel's address space and loads the kernel and the
    /// image; [`VmStart::finish`] does whatever step the thread has not
    /// begun (see [`KvmWork`]) and waits for one under way.
    ///
    /// The KVM side is mostly waiting and slow instructions: every slot
    /// added waits for an SRCU grace period, whose kworker waits for a
    /// CPU (tens of microseconds on an idle host, milliseconds on a
    /// loaded one); `KVM_GET_SUPPORTED_CPUID` executes `cpuid` for every
    /// leaf, and on a host that is itself a VM each exits to its
    /// hypervisor (about 4 us here: 0.3 ms for 75 entries);
    /// `KVM_CREATE_VM` takes 0.2 ms. Nothing needs any of it before the
    /// first `KVM_RUN`. (Not before a fork: a VM belongs to the process
    /// that made it.)
    pub fn prepare(kvm_path: &std::path::Path) -> Result<VmPrep, Error> {
        let unavailable = |e: std::io::Error| Error::KvmUnavailable {
            path: kvm_path.to_path_buf(),
            source: e,
        };
        let path = std::ffi::CString::new(kvm_path.as_os_str().as_encoded_bytes())
            .map_err(|_| unavailable(std::io::Error::from_raw_os_error(libc::EINVAL)))?;
        let open = || {
            Kvm::new_with_path(&path)
                .map_err(|e| unavailable(std::io::Error::from_raw_os_error(e.errno())))
        };
        // Two handles on KVM: the thread asks one for the supported CPUID
        // while this thread makes the VM with the other (0.3 and 0.2 ms).
        let (kvm, for_thread) = (open()?, open()?);
        let work = std::sync::Arc::new(KvmWork {
            state: std::sync::Mutex::new(WorkState {
                kvm: Some(for_thread),
                ..Default::default()
            }),
            changed: std::sync::Condvar::new(),
        });
        let theirs = work.clone();
        let thread = std::thread::Builder::new()
            .name("vkernel-vm".into())
            // ioctls and a little formatting: the default 2 MiB is mapped
            // for nothing.
            .stack_size(256 << 10)
            .spawn(move || theirs.help())
            .map_err(|source| Error::Io {
                what: "starting the VM's thread",
                source,
            })?;
        off_this_cpu(&thread);
        let mut stages = crate::Stages::from_now();
        let vm = kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?;
        enable_split_irqchip(&vm);
        stages.mark("  KVM_CREATE_VM");
        Ok(VmPrep {
            thread,
            work: SharedWork(work),
            vm,
        })
    }
}

/// Keeps `thread` off the CPU this thread runs on. Linux queues a new
/// thread on its creator's CPU, where it waits for the creator's slice
/// to end (1-1.5 ms here, where the main thread's boot work is about a
/// millisecond) even with another CPU idle; allowed only elsewhere, it
/// starts at once on another (0.1-0.2 ms here, the waking of an idle
/// vCPU of this host's own hypervisor). A process allowed only this CPU
/// is left alone, and a refusal costs nothing but the head start.
fn off_this_cpu<T>(thread: &std::thread::JoinHandle<T>) {
    use std::os::unix::thread::JoinHandleExt;
    // SAFETY: cpu_set_t is plain bits; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: our own affinity into a set of the size given.
    let got = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    // SAFETY: no arguments.
    let here = unsafe { libc::sched_getcpu() };
    if got != 0 || here < 0 {
        return;
    }
    // SAFETY: CPU_ISSET/CPU_CLR/CPU_COUNT index within the set's size.
    unsafe {
        if !libc::CPU_ISSET(here as usize, &set) {
            return;
        }
        libc::CPU_CLR(here as usize, &mut set);
        if libc::CPU_COUNT(&set) == 0 {
            return;
        }
    }
    // SAFETY: the handle's pthread is live (the thread is joined or
    // detached only after this); the set is ours.
    let rc = unsafe {
        libc::pthread_setaffinity_np(thread.as_pthread_t(), std::mem::size_of_val(&set), &set)
    };
    if rc != 0 {
        log::debug!("the VM's thread stays where Linux put it (affinity: error {rc})");
    }
}

/// A VM whose KVM side is being made ([`Vm::prepare`]).
pub struct VmPrep {
    thread: std::thread::JoinHandle<()>,
    work: SharedWork,
    vm: kvm_ioctls::VmFd,
}

/// The shared work; dropped (a VmPrep never started: an input was
/// refused), it lets the VM's thread go.
struct SharedWork(std::sync::Arc<KvmWork>);

impl Drop for SharedWork {
    fn drop(&mut self) {
        self.0.lock().stop = true;
        self.0.changed.notify_all();
    }
}

/// What the vCPU's step waits for: the VM, and its RAM's and pool's slots.
type ForThread = (
    kvm_ioctls::VmFd,
    Option<kvm_userspace_memory_region>,
    PoolSlots,
    bool,
);

/// The KVM side's work, shared by the VM's thread and the main thread:
/// whichever is there first does the next step, so that a thread the
/// scheduler starts late (milliseconds on a loaded host, where the main
/// thread waited 2 ms for it in the median) never holds the boot up.
struct KvmWork {
    state: std::sync::Mutex<WorkState>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct WorkState {
    /// The handle the supported CPUID is asked of (out during a step).
    kvm: Option<Kvm>,
    cpuid: Option<kvm_bindings::CpuId>,
    /// Sent by [`VmPrep::start`] once memory is mapped.
    parts: Option<ForThread>,
    /// The KVM side, or the error that ended it.
    done: Option<Result<KvmSide, Error>>,
    /// A step is under way (on either thread).
    busy: bool,
    /// The main thread needs nothing more: the VM's thread goes.
    stop: bool,
}

/// A step of the KVM side, taken out of the state to run unlocked.
enum Step {
    Cpuid(Kvm),
    Vcpu(Kvm, kvm_bindings::CpuId, ForThread),
}

impl KvmWork {
    fn lock(&self) -> std::sync::MutexGuard<'_, WorkState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims the next step that can run now, if no step is under way.
    fn claim(st: &mut WorkState) -> Option<Step> {
        if st.busy || st.done.is_some() || st.kvm.is_none() {
            return None;
        }
        let step = match (st.cpuid.take(), st.parts.take()) {
            (None, parts) => {
                st.parts = parts;
                Step::Cpuid(st.kvm.take()?)
            }
            (Some(cpuid), Some(parts)) => Step::Vcpu(st.kvm.take()?, cpuid, parts),
            (Some(cpuid), None) => {
                st.cpuid = Some(cpuid);
                return None;
            }
        };
        st.busy = true;
        Some(step)
    }

    /// Runs `step` unlocked and files what it made.
    fn run(&self, step: Step, who: &str) {
        let mut stages = crate::Stages::from_now();
        let (kvm, cpuid, done) = match step {
            Step::Cpuid(kvm) => match kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES) {
                Ok(c) => {
                    stages.mark(&format!("    [{who}] KVM_GET_SUPPORTED_CPUID"));
                    (Some(kvm), Some(c), None)
                }
                Err(e) => (None, None, Some(Err(kvm_err("KVM_GET_SUPPORTED_CPUID")(e)))),
            },
            Step::Vcpu(kvm, cpuid, parts) => {
                let r = make_vcpu(kvm, cpuid, parts, &mut stages, who);
                (None, None, Some(r))
            }
        };
        let mut st = self.lock();
        st.kvm = kvm.or(st.kvm.take());
        if cpuid.is_some() {
            st.cpuid = cpuid;
        }
        if done.is_some() {
            st.done = done;
        }
        st.busy = false;
        self.changed.notify_all();
    }

    /// The VM's thread: does what it can before the main thread does,
    /// waiting for memory to be mapped between the two steps.
    fn help(&self) {
        loop {
            let mut st = self.lock();
            loop {
                if st.stop || st.done.is_some() {
                    return;
                }
                if let Some(step) = Self::claim(&mut st) {
                    drop(st);
                    self.run(step, "VM thread");
                    break;
                }
                st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}

impl VmPrep {
    /// Maps guest memory and builds the kernel's address space while the
    /// thread goes on (the slots are its to add); the caller loads the
    /// kernel and the image into [`VmStart::mem`] meanwhile.
    pub fn start(self, cfg: &MemoryConfig) -> Result<VmStart, Error> {
        let mut stages = crate::Stages::from_now();
        let mem = GuestMemoryMmap::from_ranges(&[
            (GuestAddress(0), cfg.ram_bytes as usize),
            (GuestAddress(layout::POOL_BASE), cfg.pool_bytes as usize),
        ])
        .map_err(|e| Error::Memory {
            what: "mapping guest memory",
            source: Box::new(e),
        })?;
        stages.mark("  mapping guest memory (THP advice)");
        // Slot 0 is RAM, 1 the flush slot, 2 and on the pool's.
        let mut ram_slot = None;
        let mut pool_slots = None;
        for region in mem.iter() {
            let host = mem
                .get_host_address(region.start_addr())
                .map_err(|e| Error::Memory {
                    what: "finding a region's host address",
                    source: Box::new(e),
                })?;
            // Both regions fill in bursts, so let the host back them with
            // 2 MiB pages: one host fault (and one KVM fault where the
            // guest's own mapping is 2 MiB, as the kernel's RAM is) per
            // 2 MiB, not per 4 KiB. Process memory comes from the pool in
            // fault-around windows and forks; RAM is written by the loader
            // (the kernel and the image, about a megabyte: 280 faults of
            // 4 KiB took 1 ms of a 9 ms boot) and then used in address
            // order by the guest kernel (its heap, then its page allocator,
            // which hands out never-used pages lowest first).
            // SAFETY: advice only, on a mapping `mem` owns.
            let rc = unsafe {
                libc::madvise(
                    host as *mut libc::c_void,
                    region.len() as usize,
                    libc::MADV_HUGEPAGE,
                )
            };
            if rc != 0 {
                log::debug!(
                    "madvise(MADV_HUGEPAGE) on guest memory at {:#x}: {}",
                    region.start_addr().0,
                    std::io::Error::last_os_error()
                );
            }
            if region.start_addr().0 == layout::POOL_BASE {
                // Added as the pool grows (see PoolSlots).
                pool_slots = Some(PoolSlots::new(host as u64, region.len(), 2));
                continue;
            }
            // Except RAM's first 2 MiB: below the kernel (linked at 2 MiB)
            // it holds only the boot info, the command line and the clock
            // page, three 4 KiB faults where a huge page would be 2 MiB to
            // zero (about 0.3 ms here).
            let low = (region.len() as usize).min(2 << 20);
            // SAFETY: advice only, on a mapping `mem` owns.
            unsafe { libc::madvise(host as *mut libc::c_void, low, libc::MADV_NOHUGEPAGE) };
            ram_slot = Some(kvm_userspace_memory_region {
                slot: 0,
                flags: 0,
                guest_phys_addr: region.start_addr().0,
                memory_size: region.len(),
                userspace_addr: host as u64,
            });
        }
        let pool_slots = pool_slots.unwrap_or_else(|| PoolSlots::new(0, 0, 2));
        {
            let mut st = self.work.0.lock();
            st.parts = Some((self.vm, ram_slot, pool_slots, cfg.teardown_helper));
            self.work.0.changed.notify_all();
        }
        let mut start = VmStart {
            thread: Some(self.thread),
            work: self.work,
            parts: None,
        };
        let flush_slot = FlushSlot::new(1)?;
        stages.mark("  the flush slot's page");
        let guest = Guest::new(mem, cfg.ram_bytes, cfg.pool_bytes)?;
        stages.mark("  pool and the kernel's address space");
        start.parts = Some((flush_slot, guest));
        Ok(start)
    }
}

impl Vm {
    /// Points the vCPU at the kernel's entry, in ring 3 of the kernel's
    /// address space, with `rdi` = the boot-info address.
    pub fn enter_kernel(&mut self, entry: u64) -> Result<(), Error> {
        let vcpu = &self.vcpu.fd;
        let mut sregs = vcpu.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?;
        set_ring3_sregs(&mut sregs, self.guest.kernel_cr3, selector::TSS_KERNEL);
        if !self.vcpu.xsave {
            sregs.cr4 &= !bits::CR4_OSXSAVE; // KVM refuses it without XSAVE
        }
        vcpu.set_sregs(&sregs).map_err(kvm_err("KVM_SET_SREGS"))?;
        let regs = kvm_bindings::kvm_regs {
            rip: entry,
            rdi: layout::BOOT_INFO_ADDR,
            rsp: layout::BOOT_INFO_ADDR, // the kernel switches to its own stack first thing
            rflags: rflags::FIXED | rflags::IF,
            ..Default::default()
        };
        vcpu.set_regs(&regs).map_err(kvm_err("KVM_SET_REGS"))?;
        Ok(())
    }
}

/// Gives the VM an in-kernel local APIC (`KVM_CAP_SPLIT_IRQCHIP` with no
/// IOAPIC pins), which vkernel never uses: the guest gets no interrupts,
/// cannot reach the APIC (its page at 0xfee00000 lies above every RAM
/// size and outside every table the host builds or accepts; the x2APIC
/// MSRs need ring 0, which runs only the host's trap stubs), and its
/// timer is never armed. What it saves is code patching: KVM counts
/// vCPUs without an in-kernel APIC in a static key, so on a host where
/// no other such VM runs, creating the vCPU flips it on and destroying
/// it flips it off, each rewriting kernel text on every CPU (0.2 ms
/// each here, the second on the way out of the process). The APIC's own
/// key (software-disabled APICs) is a deferred one: dropped a second
/// after the last user, so back-to-back runs patch nothing. A KVM that
/// refuses the capability runs the VM as before.
fn enable_split_irqchip(vm: &kvm_ioctls::VmFd) {
    let cap = kvm_bindings::kvm_enable_cap {
        cap: kvm_bindings::KVM_CAP_SPLIT_IRQCHIP,
        ..Default::default()
    };
    if let Err(e) = vm.enable_cap(&cap) {
        log::debug!("KVM_CAP_SPLIT_IRQCHIP refused ({e}): the vCPU has no in-kernel APIC");
    }
}

/// What [`make_kvm_side`] returns: the KVM handles and the vCPU.
type KvmSide = (
    Kvm,
    kvm_ioctls::VmFd,
    VcpuFd,
    PoolSlots,
    bool,
    Option<crate::teardown::Teardown>,
);

/// A VM being made ([`Vm::start`]): guest memory and the kernel's address
/// space are ready, the KVM side may not be.
pub struct VmStart {
    /// The thread helping with the KVM side.
    thread: Option<std::thread::JoinHandle<()>>,
    work: SharedWork,
    parts: Option<(FlushSlot, Guest)>,
}

impl VmStart {
    /// Guest memory, to load the kernel and the image into.
    pub fn mem(&self) -> &GuestMemoryMmap {
        match &self.parts {
            Some((_, guest)) => &guest.mem,
            None => unreachable!("VmStart is only handed out with its parts"),
        }
    }

    /// Waits for the KVM side: the VM, ready for [`Vm::enter_kernel`].
    /// Whatever step the VM's thread has not begun, this thread does.
    pub fn finish(mut self) -> Result<Vm, Error> {
        let mut stages = crate::Stages::from_now();
        let joined = self.complete();
        stages.mark("  KVM: VM, vCPU (CPUID, MSRs, XCR0), memory slots, done or waited for");
        let (kvm, vm, mut vcpu, pool_slots, xsave, teardown) = joined?;
        let Some((flush_slot, guest)) = self.parts.take() else {
            return Err(Error::Setup("the VM's memory is gone".into()));
        };
        vcpu.set_sync_valid_reg(SyncReg::Register);
        vcpu.set_sync_valid_reg(SyncReg::SystemRegister);
        Ok(Vm {
            vcpu: KvmVcpu {
                _kvm: kvm,
                vm,
                fd: vcpu,
                flush_slot,
                pool_slots,
                xsave,
            },
            guest,
            teardown,
        })
    }
}

impl VmStart {
    /// Runs the steps nobody has begun, waits for one under way on the
    /// VM's thread, and tells that thread to go (it is not waited for:
    /// it has nothing left to do, and may not even have started).
    fn complete(&mut self) -> Result<KvmSide, Error> {
        let mut st = self.work.0.lock();
        loop {
            if let Some(done) = st.done.take() {
                st.stop = true;
                self.work.0.changed.notify_all();
                return done;
            }
            if let Some(step) = KvmWork::claim(&mut st) {
                drop(st);
                self.work.0.run(step, "main");
                st = self.work.0.lock();
                continue;
            }
            if !st.busy {
                st.stop = true;
                return Err(Error::Setup("the VM's KVM side lost its parts".into()));
            }
            // A step under way on the VM's thread; should that thread
            // have died in it, the step never ends.
            let (next, _) = self
                .work
                .0
                .changed
                .wait_timeout(st, std::time::Duration::from_millis(10))
                .unwrap_or_else(|e| e.into_inner());
            st = next;
            if st.busy && self.thread.as_ref().is_some_and(|t| t.is_finished()) {
                st.stop = true;
                return Err(Error::Setup("the VM's thread panicked".into()));
            }
        }
    }
}

impl Drop for VmStart {
    /// A step on the VM's thread may be adding slots over guest memory:
    /// it ends before the memory is unmapped (the VM goes with it); the
    /// thread then goes.
    fn drop(&mut self) {
        let mut st = self.work.0.lock();
        st.stop = true;
        self.work.0.changed.notify_all();
        while st.busy && !self.thread.as_ref().is_some_and(|t| t.is_finished()) {
            st = self
                .work
                .0
                .changed
                .wait_timeout(st, std::time::Duration::from_millis(10))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// The vCPU step of the KVM side: the vCPU with `cpuid` (the supported
/// CPUID), syscall MSRs and XCR0, and the slots of RAM and of the pool's
/// start (the kernel's tables and the trap area are there).
fn make_vcpu(
    kvm: Kvm,
    mut cpuid: kvm_bindings::CpuId,
    (vm, ram_slot, mut pool_slots, teardown_helper): ForThread,
    stages: &mut crate::Stages,
    who: &str,
) -> Result<KvmSide, Error> {
    let vcpu = vm.create_vcpu(0).map_err(kvm_err("KVM_CREATE_VCPU"))?;
    mask_unmanaged_state(&mut cpuid);
    vcpu.set_cpuid2(&cpuid).map_err(kvm_err("KVM_SET_CPUID2"))?;
    set_syscall_msrs(&vcpu)?;
    let xsave = has_xsave(&cpuid);
    if xsave {
        enable_xsave_features(&vcpu, &cpuid)?;
    } else {
        log::info!("no XSAVE: processes get x87/SSE state only (FXSAVE)");
    }
    stages.mark(&format!("    [{who}] KVM_CREATE_VCPU, CPUID, MSRs, XCR0"));
    if let Some(r) = ram_slot {
        // SAFETY: `r` names a live mapping of RAM owned by the VmStart,
        // which waits for this step before the mapping can go, and then
        // by the Vm, which keeps it as long as the VmFd. On an error the
        // memory may be unmapped while the VmFd still lives, but no vCPU
        // has run: KVM touches a slot's memory only for a running vCPU,
        // and learns of the unmapping through its notifier.
        unsafe { vm.set_user_memory_region(r) }.map_err(kvm_err("KVM_SET_USER_MEMORY_REGION"))?;
    }
    pool_slots.cover_first(&vm)?;
    stages.mark(&format!("    [{who}] memory slots (RAM, the pool's first)"));
    // Made here, the helper shares this thread's CPUs (on the VM's
    // thread, all but the main thread's: see `off_this_cpu`); it only
    // sleeps, and exits, at SCHED_IDLE.
    let mut teardown = None;
    if teardown_helper {
        use std::os::fd::AsRawFd;
        match crate::teardown::start(&[vm.as_raw_fd(), vcpu.as_raw_fd()]) {
            Ok(t) => teardown = Some(t),
            Err(e) => {
                log::debug!("no teardown helper ({e}): the VM goes down before vkernel exits")
            }
        }
        stages.mark(&format!("    [{who}] the teardown helper"));
    }
    Ok((kvm, vm, vcpu, pool_slots, xsave, teardown))
}

/// Long mode, ring 3: the state every context (kernel or process) runs in.
/// Only CR3 and TR differ between them.
pub fn set_ring3_sregs(sregs: &mut kvm_bindings::kvm_sregs, cr3: u64, tr: u16) {
    use bits::*;
    let code = kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: selector::USER_CS,
        type_: 0xb,
        present: 1,
        dpl: 3,
        db: 0,
        s: 1,
        l: 1,
        g: 1,
        ..Default::default()
    };
    let data = kvm_segment {
        selector: selector::USER_SS,
        type_: 0x3,
        db: 1,
        l: 0,
        ..code
    };
    sregs.cs = code;
    sregs.ss = data;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    set_tr(sregs, tr);
    sregs.gdt.base = trap_area::GDT_BASE;
    sregs.gdt.limit = trap_area::GDT_LIMIT;
    sregs.idt.base = trap_area::IDT_BASE;
    sregs.idt.limit = trap_area::IDT_LIMIT;
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE;
    sregs.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
    sregs.cr3 = cr3;
}

/// Loads the task register with one of the two TSSs (they differ only in
/// which I/O ports ring 3 may use).
pub fn set_tr(sregs: &mut kvm_bindings::kvm_sregs, tr: u16) {
    let base = if tr == selector::TSS_KERNEL {
        trap_area::TSS_KERNEL_BASE
    } else {
        trap_area::TSS_PROCESS_BASE
    };
    sregs.tr = kvm_segment {
        base,
        limit: trap_area::TSS_LIMIT,
        selector: tr,
        type_: tss_type(),
        present: 1,
        ..Default::default()
    };
}

/// The descriptor type vkernel gives TR: 11 (busy 64-bit TSS), or 9
/// (available 64-bit TSS) on AMD hosts.
///
/// TR is set by the host, never by `ltr` in the guest, so the busy bit only
/// matters to whatever checks it at VM entry. Intel VMX entry requires a
/// busy TSS (type 11) and fails with any other type: never 9 there. AMD's
/// VMRUN checks no segment type, and the CPU itself ignores the busy bit of
/// the loaded TR in long mode (it matters only to `ltr` and task switches,
/// which long mode has none of), so either type runs the same on real AMD
/// hardware. But QEMU's emulated AMD CPU (TCG, as in `ci/qemu-kvm.sh`)
/// refuses every ring-3 `out` through the I/O permission bitmap unless
/// the cached TR type is exactly 9, and KVM's VMRUN hands it the type we
/// set: with 11, every hypercall of the guest kernel is a #GP there. So on
/// AMD (and Hygon, the same SVM) the host loads 9, which real AMD CPUs and
/// QEMU both accept. KVM on SVM reports TR back as busy whatever was set
/// (`svm_get_segment` sets the bit), so every register context written back
/// to the vCPU goes through [`set_tr_type`]. PVM (this project's usual
/// host, on AMD here) runs the same either way.
pub fn tss_type() -> u8 {
    static TYPE: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *TYPE.get_or_init(|| {
        // SAFETY: CPUID leaf 0 exists on every x86-64 CPU.
        #[allow(unused_unsafe)]
        let r = unsafe { std::arch::x86_64::__cpuid(0) };
        let mut vendor = [0u8; 12];
        vendor[0..4].copy_from_slice(&r.ebx.to_le_bytes());
        vendor[4..8].copy_from_slice(&r.edx.to_le_bytes());
        vendor[8..12].copy_from_slice(&r.ecx.to_le_bytes());
        match &vendor {
            b"AuthenticAMD" | b"HygonGenuine" => 0x9,
            _ => 0xb,
        }
    })
}

/// Gives `sregs.tr` the type of [`tss_type`]: for register contexts read
/// back from KVM (which may report the busy type) before they are written
/// to the vCPU again.
pub fn set_tr_type(sregs: &mut kvm_bindings::kvm_sregs) {
    sregs.tr.type_ = tss_type();
}

/// Whether the CPUID KVM offers (and the vCPU gets) has XSAVE.
pub fn has_xsave(cpuid: &kvm_bindings::CpuId) -> bool {
    const XSAVE: u32 = 1 << 26; // CPUID.1:ECX
    cpuid
        .as_slice()
        .iter()
        .any(|e| e.function == 1 && e.ecx & XSAVE != 0)
}

/// Takes out of the vCPU's CPUID the state components vkernel never
/// enables in XCR0 (see [`enable_xsave_features`]): AMX (tile
/// configuration and data, components 17-18; the AMX-TILE, -INT8, -BF16
/// feature bits; leaves 0x1D/0x1E). Hardware KVM shows the guest this
/// CPUID; under PVM ring 3 reads the host's whatever is set here
/// (KVM-NOTES), and the guest kernel saves every component XCR0 has.
pub fn mask_unmanaged_state(cpuid: &mut kvm_bindings::CpuId) {
    const AMX_STATE: u32 = 0b11 << 17; // CPUID.(0xD,0):EAX
    const AMX_FEATURES: u32 = (1 << 22) | (1 << 24) | (1 << 25); // CPUID.(7,0):EDX
    for e in cpuid.as_mut_slice() {
        match (e.function, e.index) {
            (7, 0) => e.edx &= !AMX_FEATURES,
            (0xd, 0) => e.eax &= !AMX_STATE,
            (0xd, 17 | 18) | (0x1d, _) | (0x1e, _) => {
                (e.eax, e.ebx, e.ecx, e.edx) = (0, 0, 0, 0);
            }
            _ => {}
        }
    }
}

/// Processes see the host's CPUID (KVM-NOTES) and so use AVX and beyond:
/// turn on in XCR0 every user state component KVM supports (x87, SSE, AVX,
/// AVX-512), so their xsave/xgetbv checks agree with what CPUID promises.
fn enable_xsave_features(vcpu: &VcpuFd, cpuid: &kvm_bindings::CpuId) -> Result<(), Error> {
    const USER_STATE: u64 = 0b1110_0111; // x87, SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM
    let leaf = cpuid
        .as_slice()
        .iter()
        .find(|e| e.function == 0xd && e.index == 0)
        .map(|e| (e.eax as u64) | ((e.edx as u64) << 32))
        .unwrap_or(0b11);
    let mut xcr0 = leaf & USER_STATE;
    // AVX-512 state must be all or nothing, and AVX needs SSE.
    if xcr0 & 0b1110_0000 != 0b1110_0000 {
        xcr0 &= !0b1110_0000;
    }
    let mut xcrs = kvm_bindings::kvm_xcrs {
        nr_xcrs: 1,
        ..Default::default()
    };
    xcrs.xcrs[0].xcr = 0;
    xcrs.xcrs[0].value = xcr0 | 1;
    vcpu.set_xcrs(&xcrs).map_err(kvm_err("KVM_SET_XCRS"))?;
    log::info!("XCR0 = {:#x}", xcr0 | 1);
    Ok(())
}

/// `syscall` lands on the trap area's stub page with the usual RCX/R11.
fn set_syscall_msrs(vcpu: &VcpuFd) -> Result<(), Error> {
    use bits::*;
    let star = ((selector::KERNEL_SS as u64) << 48) | ((selector::KERNEL_CS as u64) << 32);
    let entries = [
        (MSR_STAR, star),
        (MSR_LSTAR, layout::SYSCALL_STUB_ADDR),
        (MSR_CSTAR, layout::SYSCALL_STUB_ADDR),
        // Clear TF, DF and AC on entry, keep IF: the stub runs with
        // interrupts as the process had them.
        (MSR_SFMASK, rflags::TF | rflags::DF | rflags::AC),
    ];
    let msrs = Msrs::from_entries(
        &entries
            .iter()
            .map(|&(index, data)| kvm_msr_entry {
                index,
                data,
                ..Default::default()
            })
            .collect::<Vec<_>>(),
    )
    .map_err(Error::MsrList)?;
    let n = vcpu.set_msrs(&msrs).map_err(kvm_err("KVM_SET_MSRS"))?;
    if n != entries.len() {
        return Err(Error::Kvm {
            what: "KVM_SET_MSRS (syscall MSRs)",
            source: kvm_ioctls::Error::new(libc::EINVAL),
        });
    }
    Ok(())
}

/// Builds the guest kernel's address space in the pool: RAM identity-mapped
/// as user pages except page 0 (the null guard), and the trap area. Returns
/// the root and the trap-area pages, and gives the registry the PML4 entry
/// that maps the trap area, for every vmspace.
fn build_kernel_address_space(
    mem: &GuestMemoryMmap,
    registry: &mut VmspaceRegistry,
    ram_bytes: u64,
) -> Result<(u64, Vec<u64>), Error> {
    use vmspace::pagetable::pte::{NX, P, RW, US};
    const TWO_MB: u64 = 2 << 20;
    let table_err = |source| Error::Vmspace {
        what: "building the kernel's page tables",
        source,
    };
    let mut pages = vec![0u64; trap_area::PAGES as usize];
    let image = trap_area::build();
    for (index, contents, _) in &image.pages {
        let gpa = registry
            .pool_mut()
            .alloc_zeroed()
            .ok_or(Error::PoolTooSmall)?;
        mem.write_slice(contents, GuestAddress(gpa))
            .map_err(|e| Error::Memory {
                what: "writing the trap area",
                source: Box::new(e),
            })?;
        pages[*index as usize] = gpa;
    }

    let mut pt = registry.host_page_table();
    let root = pt.new_root().map_err(table_err)?;
    let ram = P | RW | US;
    let mut va = layout::PAGE_SIZE;
    while va < ram_bytes {
        if va.is_multiple_of(TWO_MB) && va + TWO_MB <= ram_bytes {
            pt.map_2m(root, va, va, ram).map_err(table_err)?;
            va += TWO_MB;
        } else {
            pt.map_4k(root, va, va, ram).map_err(table_err)?;
            va += layout::PAGE_SIZE;
        }
    }
    for (index, _, access) in &image.pages {
        let flags = match access {
            Access::UserExec => P | US,
            Access::SupervisorData => P | RW | NX,
            Access::SupervisorExec => P,
        };
        let va = layout::TRAP_AREA_BASE + index * layout::PAGE_SIZE;
        pt.map_4k(root, va, pages[*index as usize], flags)
            .map_err(table_err)?;
    }
    let entry = pt
        .read(root, vmspace::TRAP_AREA_PML4_SLOT as u64)
        .map_err(table_err)?;
    registry.set_trap_area_pml4e(entry);
    Ok((root, pages))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_bindings::{kvm_cpuid_entry2, CpuId};

    /// The process's allowed CPUs.
    fn allowed() -> libc::cpu_set_t {
        // SAFETY: plain bits, filled by the call.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: this thread's affinity into a set of the size given.
        let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
        assert_eq!(rc, 0);
        set
    }

    #[test]
    fn the_vms_thread_may_run_on_every_cpu_but_its_creators() {
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            wait.recv().ok();
            allowed()
        });
        off_this_cpu(&thread);
        go.send(()).unwrap();
        let theirs = thread.join().unwrap();
        let ours = allowed();
        // SAFETY: CPU_COUNT/CPU_ISSET within the sets' size.
        let (n_ours, n_theirs) = unsafe { (libc::CPU_COUNT(&ours), libc::CPU_COUNT(&theirs)) };
        if n_ours < 2 {
            assert_eq!(n_theirs, n_ours, "a one-CPU process is left alone");
            return;
        }
        assert_eq!(n_theirs, n_ours - 1, "one CPU taken out");
        for cpu in 0..libc::CPU_SETSIZE as usize {
            // SAFETY: as above.
            let (a, b) = unsafe { (libc::CPU_ISSET(cpu, &ours), libc::CPU_ISSET(cpu, &theirs)) };
            assert!(
                a || !b,
                "CPU {cpu} allowed to the thread, not to the process"
            );
        }
    }

    fn entry(function: u32, index: u32, eax: u32, edx: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            eax,
            ebx: 0x1234,
            edx,
            ..Default::default()
        }
    }

    #[test]
    fn amx_state_is_masked_out_of_the_vcpu_cpuid() {
        let mut cpuid = CpuId::from_entries(&[
            entry(7, 0, 0, (1 << 22) | (1 << 24) | (1 << 25) | (1 << 4)),
            entry(0xd, 0, 0x6_02e7, 0),
            entry(0xd, 18, 8192, 0),
            entry(0x1d, 1, 8192, 0),
            entry(1, 0, 7, 7),
        ])
        .unwrap();
        mask_unmanaged_state(&mut cpuid);
        let e = cpuid.as_slice();
        assert_eq!(e[0].edx, 1 << 4, "AMX feature bits cleared, the rest kept");
        assert_eq!(e[1].eax, 0x2e7, "XCR0-supported bits without tile state");
        assert_eq!((e[2].eax, e[2].ebx), (0, 0));
        assert_eq!((e[3].eax, e[3].ebx), (0, 0));
        assert_eq!((e[4].eax, e[4].edx), (7, 7));
    }
}
