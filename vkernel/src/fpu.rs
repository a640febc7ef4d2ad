//! FPU/SSE/AVX state belongs to processes. The guest kernel is soft-float
//! and never touches it, so the vCPU's FPU holds the state of the last
//! process that ran; the host swaps it (KVM_GET/SET_XSAVE) only when a
//! different process is run, never on a kernel↔process crossing.

use std::collections::HashMap;

use kvm_bindings::kvm_xsave;
use kvm_ioctls::VcpuFd;

use crate::error::{kvm_err, Error};

/// Saved FPU states by vmspace id.
pub struct FpuStates {
    /// Whose state the vCPU holds now.
    owner: Option<u64>,
    saved: HashMap<u64, Box<kvm_xsave>>,
    /// The reset state a new process starts with.
    initial: Box<kvm_xsave>,
}

impl FpuStates {
    /// Captures the vCPU's reset state as every new process's start state.
    pub fn new(vcpu: &VcpuFd) -> Result<Self, Error> {
        Ok(FpuStates {
            owner: None,
            saved: HashMap::new(),
            initial: Box::new(vcpu.get_xsave().map_err(kvm_err("KVM_GET_XSAVE"))?),
        })
    }

    /// Makes the vCPU hold process `id`'s state.
    pub fn switch_to(&mut self, vcpu: &VcpuFd, id: u64) -> Result<(), Error> {
        if self.owner == Some(id) {
            return Ok(());
        }
        if let Some(old) = self.owner {
            let st = vcpu.get_xsave().map_err(kvm_err("KVM_GET_XSAVE"))?;
            self.saved.insert(old, Box::new(st));
        }
        let st = self.saved.remove(&id).unwrap_or_else(|| dup(&self.initial));
        // SAFETY: `st` is a full kvm_xsave obtained from KVM_GET_XSAVE on this vCPU.
        unsafe { vcpu.set_xsave(&st) }.map_err(kvm_err("KVM_SET_XSAVE"))?;
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
            Box::new(vcpu.get_xsave().map_err(kvm_err("KVM_GET_XSAVE"))?)
        } else {
            dup(self.saved.get(&src).unwrap_or(&self.initial))
        };
        self.saved.insert(dst, st);
        Ok(())
    }
}

/// A copy of an xsave area (`kvm_xsave` is not `Clone`: it ends in a
/// flexible array, unused with `KVM_GET_XSAVE`).
fn dup(x: &kvm_xsave) -> Box<kvm_xsave> {
    let mut b = Box::<kvm_xsave>::default();
    b.region = x.region;
    b
}
