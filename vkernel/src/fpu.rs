//! FPU/SSE/AVX state belongs to processes. The guest kernel is soft-float
//! and never touches it, so the vCPU's FPU holds the state of the last
//! process that ran; the host swaps it (KVM_GET/SET_XSAVE) only when a
//! different process is run, never on a kernel↔process crossing.

use std::collections::HashMap;

use kvm_bindings::kvm_xsave;

use crate::error::Error;
use crate::vcpu::Vcpu;

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
    pub fn new(vcpu: &impl Vcpu) -> Result<Self, Error> {
        Ok(FpuStates {
            owner: None,
            saved: HashMap::new(),
            initial: vcpu.xsave()?,
        })
    }

    /// Makes the vCPU hold process `id`'s state.
    pub fn switch_to(&mut self, vcpu: &mut impl Vcpu, id: u64) -> Result<(), Error> {
        if self.owner == Some(id) {
            return Ok(());
        }
        if let Some(old) = self.owner {
            self.saved.insert(old, vcpu.xsave()?);
        }
        let st = self.saved.remove(&id).unwrap_or_else(|| dup(&self.initial));
        vcpu.set_xsave(&st)?;
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
    pub fn copy(&mut self, vcpu: &impl Vcpu, src: u64, dst: u64) -> Result<(), Error> {
        let st = if self.owner == Some(src) {
            vcpu.xsave()?
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
