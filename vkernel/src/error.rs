//! The host's errors: each says what failed and carries the cause.

use std::path::PathBuf;

/// Why vkernel could not start or keep running a guest (the guest's own
/// crashes are not errors: they are reported and end the run with a status).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// /dev/kvm could not be opened.
    #[error("cannot open {} ({source}): KVM is not available on this machine, or this user may not use it (it needs the kvm module loaded and read-write access to {})", path.display(), path.display())]
    KvmUnavailable {
        /// The device path.
        path: PathBuf,
        /// Why it could not be opened.
        source: std::io::Error,
    },
    /// A KVM ioctl failed.
    #[error("KVM {what} failed: {source}")]
    Kvm {
        /// Which call.
        what: &'static str,
        /// errno from the kernel.
        source: kvm_ioctls::Error,
    },
    /// Guest memory could not be set up.
    #[error("guest memory: {what}: {source}")]
    Memory {
        /// What was being done.
        what: &'static str,
        /// The cause (vm-memory's error).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The vmspace core refused to set up the pool or the kernel's tables.
    #[error("{what}: {source}")]
    Vmspace {
        /// What was being done.
        what: &'static str,
        /// The cause.
        source: vmspace::Error,
    },
    /// The MSR list for the vCPU could not be built.
    #[error("building the vCPU's MSR list: {0}")]
    MsrList(#[source] vmm_sys_util::fam::Error),
    /// A host facility (a timer, a thread, a file, a child process) failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The gdb stub could not listen on its address.
    #[error("gdb stub on {addr}: {source}")]
    Gdb {
        /// The address given with --gdb.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// --gdb names an address other than loopback without
    /// --gdb-allow-remote.
    #[error("--gdb {addr}: {resolved} is not a loopback address; the gdb stub has no authentication, so give --gdb-allow-remote to listen there anyway")]
    GdbRemote {
        /// The address given with --gdb.
        addr: String,
        /// The first address it resolved to that is not loopback.
        resolved: std::net::SocketAddr,
    },
    /// A file named on the command line could not be read.
    #[error("{path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The kernel or image was refused.
    #[error(transparent)]
    Load(#[from] loader::LoadError),
    /// A host facility the run loop needs could not be set up.
    #[error("{0}")]
    Setup(String),
    /// The host pool is too small for the trap area and kernel page tables.
    #[error("host pool too small for the trap area and the kernel's page tables")]
    PoolTooSmall,
}

/// Wraps a KVM ioctl error with the call's name.
pub fn kvm_err(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Error {
    move |source| Error::Kvm { what, source }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn each_failure_says_what_failed_and_keeps_its_cause() {
        let msr = Error::MsrList(vmm_sys_util::fam::Error::SizeLimitExceeded);
        assert!(
            msr.to_string().starts_with("building the vCPU's MSR list"),
            "{msr}"
        );
        assert!(msr.source().is_some());
        let kvm = kvm_err("KVM_SET_MSRS")(kvm_ioctls::Error::new(libc::EINVAL));
        assert!(
            kvm.to_string().starts_with("KVM KVM_SET_MSRS failed"),
            "{kvm}"
        );
        assert!(kvm.source().is_some());
        let io = Error::Io {
            what: "creating the time-slice timer",
            source: std::io::Error::from_raw_os_error(libc::EAGAIN),
        };
        assert!(io.source().is_some());
        let mem = Error::Vmspace {
            what: "building the kernel's page tables",
            source: vmspace::Error::OutOfFrames,
        };
        assert_eq!(
            mem.to_string(),
            "building the kernel's page tables: host pool exhausted: no free page"
        );
        assert!(mem.source().is_some());
    }
}
