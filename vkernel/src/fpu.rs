//! FPU/SSE/AVX state belongs to processes. The guest kernel is soft-float
//! and never touches it, so the vCPU's FPU holds the state of the last
//! process that ran; the host swaps it (KVM_GET/SET_XSAVE) only when a
//! different process is run, never on a kernel↔process crossing.
//!
//! On a CPU without XSAVE (QEMU's `qemu64`, older hosts) KVM offers no
//! XCR0 and the vCPU gets no XSAVE in its CPUID: processes then have the
//! x87/SSE state only, the FXSAVE image, swapped with KVM_GET/SET_FPU.

use std::collections::HashMap;

use kvm_bindings::{kvm_fpu, kvm_xsave, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::VcpuFd;

use crate::error::{kvm_err, Error};

/// One process's saved state, in the form the vCPU's FPU is read with.
enum State {
    /// The whole xsave area (x87, SSE, AVX...).
    Xsave(Box<kvm_xsave>),
    /// The FXSAVE image only (x87 and SSE), without XSAVE.
    Fx(Box<kvm_fpu>),
}

impl State {
    fn dup(&self) -> State {
        match self {
            State::Xsave(x) => State::Xsave(dup(x)),
            State::Fx(f) => State::Fx(f.clone()),
        }
    }
}

/// Saved FPU states by vmspace id.
pub struct FpuStates {
    /// Whose state the vCPU holds now.
    owner: Option<u64>,
    saved: HashMap<u64, State>,
    /// The reset state a new process starts with.
    initial: State,
    /// KVM_GET/SET_XSAVE (true) or KVM_GET/SET_FPU (no XSAVE).
    xsave: bool,
}

impl FpuStates {
    /// Captures the vCPU's reset state as every new process's start state.
    pub fn new(vcpu: &VcpuFd) -> Result<Self, Error> {
        let cpuid = vcpu
            .get_cpuid2(KVM_MAX_CPUID_ENTRIES)
            .map_err(kvm_err("KVM_GET_CPUID2"))?;
        let xsave = crate::vm::has_xsave(&cpuid);
        Ok(FpuStates {
            owner: None,
            saved: HashMap::new(),
            initial: get(vcpu, xsave)?,
            xsave,
        })
    }

    /// Makes the vCPU hold process `id`'s state.
    pub fn switch_to(&mut self, vcpu: &VcpuFd, id: u64) -> Result<(), Error> {
        if self.owner == Some(id) {
            return Ok(());
        }
        if let Some(old) = self.owner {
            let st = get(vcpu, self.xsave)?;
            self.saved.insert(old, st);
        }
        let st = self.saved.remove(&id).unwrap_or_else(|| self.initial.dup());
        match &st {
            // SAFETY: `x` is a full kvm_xsave obtained from KVM_GET_XSAVE on this vCPU.
            State::Xsave(x) => unsafe { vcpu.set_xsave(x) }.map_err(kvm_err("KVM_SET_XSAVE"))?,
            State::Fx(f) => vcpu.set_fpu(f).map_err(kvm_err("KVM_SET_FPU"))?,
        }
        self.owner = Some(id);
        Ok(())
    }

    /// Process `id` is gone: drop its state.
    pub fn forget(&mut self, id: u64) {
        self.saved.remove(&id);
        if self.owner == Some(id) {
            self.owner = None;
        }
    }

    /// `dst` starts with a copy of `src`'s state (fork).
    pub fn copy(&mut self, vcpu: &VcpuFd, src: u64, dst: u64) -> Result<(), Error> {
        let st = if self.owner == Some(src) {
            get(vcpu, self.xsave)?
        } else {
            self.saved.get(&src).unwrap_or(&self.initial).dup()
        };
        self.saved.insert(dst, st);
        Ok(())
    }
}

/// Reads the vCPU's FPU state in the form `xsave` says.
fn get(vcpu: &VcpuFd, xsave: bool) -> Result<State, Error> {
    Ok(if xsave {
        State::Xsave(Box::new(
            vcpu.get_xsave().map_err(kvm_err("KVM_GET_XSAVE"))?,
        ))
    } else {
        State::Fx(Box::new(vcpu.get_fpu().map_err(kvm_err("KVM_GET_FPU"))?))
    })
}

/// A copy of an xsave area (`kvm_xsave` is not `Clone`: it ends in a
/// flexible array, unused with `KVM_GET_XSAVE`).
fn dup(x: &kvm_xsave) -> Box<kvm_xsave> {
    let mut b = Box::<kvm_xsave>::default();
    b.region = x.region;
    b
}
