//! Processes' FPU/SSE/AVX state. The host switches none of it between
//! vmspaces (DragonFly's model, where the vkernel owns its processes' FPU):
//! the vCPU's FPU registers are those of the last process that ran, and
//! this kernel — soft-float, in ring 3 on the same vCPU — saves and loads
//! them itself with XSAVE/XRSTOR (FXSAVE/FXRSTOR where the CPU has no
//! XSAVE), only when a different process runs next. The saved image is in
//! the standard (uncompacted) format, which is also the layout of the
//! `fpstate` in a Linux signal frame.
//!
//! XRSTOR/FXRSTOR raise #GP on a malformed image, and a fault here would be
//! the kernel's: images that come from processes (rt_sigreturn) are checked
//! first with [`Fpu::check`], as Linux checks them.

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use core::ptr::NonNull;

/// Byte offsets in the FXSAVE image (the first 512 bytes).
pub const MXCSR: usize = 24;
const MXCSR_MASK: usize = 28;
/// The XSAVE header follows the legacy area.
pub const XSAVE_HEADER: usize = 512;
/// XCR0's protection-key state component (PKRU).
const XFEATURE_PKRU: u64 = 1 << 9;
/// Legacy (FXSAVE) area size.
pub const FXSAVE_BYTES: usize = 512;

/// What this CPU saves, read once at boot.
#[derive(Clone, Copy, Debug)]
pub struct Fpu {
    /// XSAVE is enabled (CR4.OSXSAVE); otherwise FXSAVE.
    pub xsave: bool,
    /// Bytes of a saved image (XSAVE: for the components XCR0 enables).
    pub size: usize,
    /// XCR0: the components saved (x87 and SSE only without XSAVE).
    pub features: u64,
    /// The MXCSR bits that may be set.
    mxcsr_mask: u32,
}

/// One process's saved registers: `Fpu::size` bytes, 64-byte aligned.
pub struct FpuArea {
    ptr: NonNull<u8>,
    size: usize,
}

impl FpuArea {
    fn layout(size: usize) -> Layout {
        // 64-byte alignment is what XSAVE needs (FXSAVE: 16).
        Layout::from_size_align(size, 64).unwrap_or(Layout::new::<[u8; 64]>())
    }

    /// A zeroed area, or `None` when the kernel heap is exhausted.
    fn new(size: usize) -> Option<FpuArea> {
        // SAFETY: the layout has a non-zero size (at least 512 bytes).
        let ptr = NonNull::new(unsafe { alloc_zeroed(Self::layout(size)) })?;
        Some(FpuArea { ptr, size })
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` holds `size` initialized bytes owned by `self`.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.size) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, borrowed mutably through `self`.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.size) }
    }
}

impl Drop for FpuArea {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), Self::layout(self.size)) }
    }
}

/// CPUID leaf `leaf`, subleaf `sub`: (eax, ebx, ecx, edx).
fn cpuid(leaf: u32, sub: u32) -> (u32, u32, u32, u32) {
    let r = core::arch::x86_64::__cpuid_count(leaf, sub);
    (r.eax, r.ebx, r.ecx, r.edx)
}

impl Fpu {
    /// Reads what the CPU saves; the vCPU's FPU must still hold its reset
    /// state (no process has run).
    pub fn probe() -> Fpu {
        const OSXSAVE: u32 = 1 << 27;
        let xsave = cpuid(1, 0).2 & OSXSAVE != 0;
        let (size, features) = if xsave {
            let xcr0 = xgetbv0();
            (cpuid(0xd, 0).1 as usize, xcr0)
        } else {
            (FXSAVE_BYTES, 0b11)
        };
        let mut fpu = Fpu {
            xsave,
            size: size.max(FXSAVE_BYTES + 64),
            features,
            mxcsr_mask: 0,
        };
        // The MXCSR mask is in any FXSAVE image; 0 there means the
        // original 0xffbf.
        let mut probe = fpu.area().expect("boot: no heap for the FPU probe");
        fpu.save_fx(&mut probe);
        let b = probe.bytes();
        let mask = u32::from_le_bytes([
            b[MXCSR_MASK],
            b[MXCSR_MASK + 1],
            b[MXCSR_MASK + 2],
            b[MXCSR_MASK + 3],
        ]);
        fpu.mxcsr_mask = if mask == 0 { 0xffbf } else { mask };
        fpu
    }

    /// A new area holding the initial state (as after Linux's execve:
    /// FCW 0x37f, MXCSR 0x1f80, everything else zero / in its init state).
    pub fn area(&self) -> Option<FpuArea> {
        let mut a = FpuArea::new(self.size)?;
        self.reset(&mut a);
        Some(a)
    }

    /// Puts `a` back to the initial state.
    pub fn reset(&self, a: &mut FpuArea) {
        let b = a.bytes_mut();
        b.fill(0);
        b[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
        b[MXCSR..MXCSR + 4].copy_from_slice(&0x1f80u32.to_le_bytes());
        // XSTATE_BV 0: XRSTOR puts every component in its init state
        // (MXCSR still comes from the image).
    }

    /// Saves the vCPU's FPU registers into `a`.
    pub fn save(&self, a: &mut FpuArea) {
        if self.xsave {
            let (lo, hi) = (self.features as u32, (self.features >> 32) as u32);
            // SAFETY: `a` is `size` bytes (what CPUID says XSAVE writes for
            // XCR0) and 64-byte aligned; XSAVE is enabled (CR4.OSXSAVE).
            unsafe {
                core::arch::asm!("xsave64 [{}]", in(reg) a.ptr.as_ptr(),
                    in("eax") lo, in("edx") hi, options(nostack))
            };
        } else {
            self.save_fx(a);
        }
    }

    fn save_fx(&self, a: &mut FpuArea) {
        // SAFETY: `a` holds at least 512 bytes, 16-byte aligned.
        unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) a.ptr.as_ptr(), options(nostack)) };
    }

    /// Loads the vCPU's FPU registers from `a`, which must be an image this
    /// kernel saved or one that passed [`Fpu::check`].
    pub fn restore(&self, a: &FpuArea) {
        if self.xsave {
            // Never PKRU (component 9): the kernel keeps 0 and each task's
            // own value apart (`Proc::pkru`); one loaded from an image a
            // process wrote (rt_sigreturn) could deny the kernel its own
            // pages.
            let mask = self.features & !XFEATURE_PKRU;
            let (lo, hi) = (mask as u32, (mask >> 32) as u32);
            // SAFETY: as in `save`; the image is well formed (see above),
            // so XRSTOR cannot fault.
            unsafe {
                core::arch::asm!("xrstor64 [{}]", in(reg) a.ptr.as_ptr(),
                    in("eax") lo, in("edx") hi, options(nostack))
            };
        } else {
            // SAFETY: as above, for FXRSTOR (MXCSR checked).
            unsafe { core::arch::asm!("fxrstor64 [{}]", in(reg) a.ptr.as_ptr(), options(nostack)) };
        }
    }

    /// Whether `img` (a process-supplied image of `self.size` bytes) can
    /// be loaded without a fault: Linux's checks before XRSTOR of a signal
    /// frame — MXCSR without reserved bits; for XSAVE the header in the
    /// standard format (XCOMP_BV 0, reserved bytes 0) naming only enabled
    /// components.
    pub fn check(&self, img: &[u8]) -> bool {
        if img.len() < self.size {
            return false;
        }
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&img[at..at + 8]);
            u64::from_le_bytes(w)
        };
        let mxcsr = word(MXCSR) as u32;
        if mxcsr & !self.mxcsr_mask != 0 {
            return false;
        }
        if !self.xsave {
            return true;
        }
        let h = XSAVE_HEADER;
        let xstate_bv = word(h);
        xstate_bv & !self.features == 0 && img[h + 8..h + 64].iter().all(|&b| b == 0)
    }
}

/// XCR0 (XGETBV is allowed in ring 3 once CR4.OSXSAVE is set).
fn xgetbv0() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: reads XCR0; only called when CPUID reports OSXSAVE.
    unsafe {
        core::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack))
    };
    (lo as u64) | ((hi as u64) << 32)
}

impl super::ProcTable {
    /// Makes the vCPU hold process `s`'s FPU registers (saving those of
    /// the process that had them).
    pub fn load_fpu(&mut self, s: usize) {
        let pid = self.procs[s].pid;
        if self.fpu_owner == Some(pid) {
            return;
        }
        if let Some(o) = self.fpu_owner.and_then(|o| self.find(o)) {
            if let Some(a) = self.procs[o].fpu.as_mut() {
                self.fpu.save(a);
            }
        }
        match &self.procs[s].fpu {
            Some(a) => {
                self.fpu.restore(a);
                self.fpu_owner = Some(pid);
            }
            // A process without an image never runs (exec gives it one).
            None => self.fpu_owner = None,
        }
    }

    /// Process `s`'s FPU image, brought up to date if the vCPU holds it.
    /// After changing it, call [`ProcTable::fpu_changed`].
    pub fn fpu_image(&mut self, s: usize) -> Option<&mut FpuArea> {
        let fpu = self.fpu;
        let owner = self.fpu_owner == Some(self.procs[s].pid);
        let a = self.procs[s].fpu.as_mut()?;
        if owner {
            fpu.save(a);
        }
        Some(a)
    }

    /// Process `s`'s image was changed: load it before `s` runs again.
    pub fn fpu_changed(&mut self, s: usize) {
        if self.fpu_owner == Some(self.procs[s].pid) {
            self.fpu_owner = None;
        }
    }

    /// A copy of process `s`'s FPU state for a child (fork), or `None`
    /// when the kernel heap is exhausted.
    pub fn fpu_copy(&mut self, s: usize) -> Option<FpuArea> {
        let fpu = self.fpu;
        let mut child = fpu.area()?;
        if let Some(a) = self.fpu_image(s) {
            child.bytes_mut().copy_from_slice(a.bytes());
        }
        Some(child)
    }

    /// Gives process `s` a fresh initial FPU state (execve); `ENOMEM` when
    /// no area can be had.
    pub fn fpu_reset(&mut self, s: usize) -> Result<(), vkernel_abi::Errno> {
        let fpu = self.fpu;
        match self.procs[s].fpu.as_mut() {
            Some(a) => fpu.reset(a),
            None => self.procs[s].fpu = Some(fpu.area().ok_or(vkernel_abi::Errno::ENOMEM)?),
        }
        self.fpu_changed(s);
        Ok(())
    }
}

/// Whether ring 3 honours protection keys here: CPUID.7:ECX.OSPKE as ring
/// 3 sees it. Under PVM ring 3 runs with the host's CR4.PKE, whatever the
/// vCPU's CR4 says, so a process can WRPKRU; on hardware KVM the vCPU's
/// CR4.PKE is clear and WRPKRU is #UD.
pub fn pkeys() -> bool {
    use core::sync::atomic::{AtomicU8, Ordering};
    // 0 unknown, 1 no, 2 yes: read once.
    static PKEYS: AtomicU8 = AtomicU8::new(0);
    match PKEYS.load(Ordering::Relaxed) {
        0 => {
            const OSPKE: u32 = 1 << 4;
            let on = cpuid(0, 0).0 >= 7 && cpuid(7, 0).2 & OSPKE != 0;
            PKEYS.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
        v => v == 2,
    }
}
