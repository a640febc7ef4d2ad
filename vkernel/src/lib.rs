//! vkernel: a virtual kernel that runs as an ordinary host process.
//!
//! The path of a hypercall, top-down: the guest kernel's `out` (guest
//! `hypercall.rs`) → `machine.rs` (`KVM_RUN` exit, by port) →
//! `hypercall.rs` (block checked, call dispatched) → the `vmspace` crate
//! (registry, map, page tables in the host pool).

pub mod cli;
pub mod console;
pub mod crash;
pub mod error;
pub mod fpu;
pub mod gdb;
pub mod hypercall;
pub mod idle;
pub mod images;
pub mod machine;
pub mod process;
pub mod slice_timer;
pub mod trap_area;
pub mod vm;
pub mod vmspace_calls;

use std::path::Path;

pub use error::Error;
use machine::{Machine, Outcome};

/// Exit code when the host stopped the guest (crash, protocol violation).
pub const EXIT_GUEST_STOPPED: u8 = 2;

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    })
}

/// Boots the guest described by `args` and runs it to the end. Returns the
/// process exit code: the guest's status, or [`EXIT_GUEST_STOPPED`].
pub fn run(args: &cli::RunArgs) -> Result<u8, Error> {
    let kernel_bytes = match &args.kernel {
        Some(p) => read(p)?,
        None => images::KERNEL.to_vec(),
    };
    let image_bytes = match &args.image {
        Some(p) => read(p)?,
        None => images::DEFAULT_IMAGE.to_vec(),
    };
    let name = |p: &Option<std::path::PathBuf>| match p {
        Some(p) => p.display().to_string(),
        None => "built-in".to_string(),
    };
    let cfg = vm::MemoryConfig {
        ram_bytes: args.memory << 20,
        pool_bytes: args.pool << 20,
        kvm_path: args.kvm.clone(),
    };
    let mut vm = vm::Vm::new(&cfg)?;
    let loaded = loader::load(
        &vm.mem,
        cfg.ram_bytes,
        cfg.pool_bytes,
        &loader::Blob {
            name: name(&args.kernel),
            bytes: &kernel_bytes,
        },
        &loader::Blob {
            name: name(&args.image),
            bytes: &image_bytes,
        },
        &args.append,
    )?;
    vm.enter_kernel(loaded.entry)?;
    let mut machine = Machine::new(vm)?;
    if let Some(addr) = &args.gdb {
        let stub = gdb::Gdb::listen(addr, &kernel_bytes)
            .map_err(|e| Error::Setup(format!("gdb stub on {addr}: {e}")))?;
        machine.attach_gdb(stub);
    }
    let outcome = machine.run()?;
    let running = machine.vm().registry.teardown_all();
    for id in running {
        log::warn!("vmspace {id:#x} was running when the guest kernel ended; released");
    }
    Ok(match outcome {
        Outcome::Exited(status) => (status & 0xff) as u8,
        Outcome::Stopped => EXIT_GUEST_STOPPED,
    })
}
