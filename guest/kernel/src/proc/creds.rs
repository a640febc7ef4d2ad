//! A task's credentials, as Linux keeps them (`struct cred`;
//! credentials(7), capabilities(7)): real, effective, saved and
//! file-system user and group ids, and the capability sets. Every
//! process starts as root with every capability; the set*id calls
//! change ids by Linux's rules (kernel/sys.c), and the capabilities
//! follow the ids as Linux's `cap_emulate_setxuid` makes them (a process
//! that leaves uid 0 everywhere loses them, unless it asked to keep
//! them). What a capability allows is not checked beyond these calls:
//! a task without them still passes every file permission check (see
//! [`Creds::dropped_root`]).

use vkernel_abi::Errno;

/// `CAP_LAST_CAP` of the host's kernel (Linux 6.x: CAP_CHECKPOINT_RESTORE).
pub const CAP_LAST_CAP: u32 = 40;
/// Every capability.
pub const CAP_FULL: u64 = (1 << (CAP_LAST_CAP + 1)) - 1;
pub const CAP_SETGID: u32 = 6;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_SETUID: u32 = 7;
pub const CAP_SETPCAP: u32 = 8;
/// The capabilities a file-system uid of 0 brings (Linux's
/// `CAP_FS_MASK`): chown, dac_override, dac_read_search, fowner, fsetid,
/// linux_immutable, mknod, mac_override.
const CAP_FS_MASK: u64 = 0b1_1111 | 1 << 9 | 1 << 27 | 1 << 32;

/// The id that means "leave it as it is" (`(uid_t)-1`).
const UNCHANGED: u32 = u32::MAX;

/// A task's ids and capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Creds {
    pub ruid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub rgid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    pub cap_inheritable: u64,
    pub cap_permitted: u64,
    pub cap_effective: u64,
    pub cap_bounding: u64,
    pub cap_ambient: u64,
    /// PR_SET_KEEPCAPS: leaving uid 0 keeps the permitted set (cleared by
    /// exec).
    pub keep_caps: bool,
}

impl Creds {
    /// Root with every capability: init's, and so every process's until
    /// it changes them.
    pub const ROOT: Creds = Creds {
        ruid: 0,
        euid: 0,
        suid: 0,
        fsuid: 0,
        rgid: 0,
        egid: 0,
        sgid: 0,
        fsgid: 0,
        cap_inheritable: 0,
        cap_permitted: CAP_FULL,
        cap_effective: CAP_FULL,
        cap_bounding: CAP_FULL,
        cap_ambient: 0,
        keep_caps: false,
    };

    pub fn capable(&self, cap: u32) -> bool {
        self.cap_effective & (1 << cap) != 0
    }

    /// Whether it has lost a file-permission capability root has: file
    /// permissions are not checked here, so it can still do what root can.
    pub fn dropped_root(&self) -> bool {
        self.cap_effective & CAP_FS_MASK != CAP_FS_MASK
    }

    /// setuid(uid).
    pub fn set_uid(&mut self, uid: u32) -> Result<(), Errno> {
        if uid == UNCHANGED {
            return Err(Errno::EINVAL);
        }
        let old = *self;
        if old.capable(CAP_SETUID) {
            self.ruid = uid;
            self.suid = uid;
        } else if uid != old.ruid && uid != old.suid {
            return Err(Errno::EPERM);
        }
        self.euid = uid;
        self.fsuid = uid;
        self.fix_caps(&old);
        Ok(())
    }

    /// setreuid(ruid, euid).
    pub fn set_reuid(&mut self, ruid: u32, euid: u32) -> Result<(), Errno> {
        let old = *self;
        let mut new = old;
        let privileged = old.capable(CAP_SETUID);
        if ruid != UNCHANGED {
            new.ruid = ruid;
            if ruid != old.ruid && ruid != old.euid && !privileged {
                return Err(Errno::EPERM);
            }
        }
        if euid != UNCHANGED {
            new.euid = euid;
            if euid != old.ruid && euid != old.euid && euid != old.suid && !privileged {
                return Err(Errno::EPERM);
            }
        }
        if ruid != UNCHANGED || (euid != UNCHANGED && euid != old.ruid) {
            new.suid = new.euid;
        }
        new.fsuid = new.euid;
        new.fix_caps(&old);
        *self = new;
        Ok(())
    }

    /// setresuid(ruid, euid, suid).
    pub fn set_resuid(&mut self, ruid: u32, euid: u32, suid: u32) -> Result<(), Errno> {
        let old = *self;
        let noop = (ruid == UNCHANGED || ruid == old.ruid)
            && (euid == UNCHANGED || (euid == old.euid && euid == old.fsuid))
            && (suid == UNCHANGED || suid == old.suid);
        if noop {
            return Ok(());
        }
        let new_id =
            |id: u32| id != UNCHANGED && id != old.ruid && id != old.euid && id != old.suid;
        if (new_id(ruid) || new_id(euid) || new_id(suid)) && !old.capable(CAP_SETUID) {
            return Err(Errno::EPERM);
        }
        if ruid != UNCHANGED {
            self.ruid = ruid;
        }
        if euid != UNCHANGED {
            self.euid = euid;
        }
        if suid != UNCHANGED {
            self.suid = suid;
        }
        self.fsuid = self.euid;
        self.fix_caps(&old);
        Ok(())
    }

    /// setfsuid(uid): the old file-system uid, changed or not.
    pub fn set_fsuid(&mut self, uid: u32) -> u32 {
        let old = *self;
        if uid == UNCHANGED {
            return old.fsuid;
        }
        let allowed =
            [old.ruid, old.euid, old.suid, old.fsuid].contains(&uid) || old.capable(CAP_SETUID);
        if allowed && uid != old.fsuid {
            self.fsuid = uid;
            // Linux's LSM_SETID_FS fixup: the file-system capabilities
            // follow a file-system uid of 0.
            if old.fsuid == 0 && uid != 0 {
                self.cap_effective &= !CAP_FS_MASK;
            } else if old.fsuid != 0 && uid == 0 {
                self.cap_effective |= self.cap_permitted & CAP_FS_MASK;
            }
        }
        old.fsuid
    }

    /// setgid(gid).
    pub fn set_gid(&mut self, gid: u32) -> Result<(), Errno> {
        if gid == UNCHANGED {
            return Err(Errno::EINVAL);
        }
        if self.capable(CAP_SETGID) {
            self.rgid = gid;
            self.sgid = gid;
        } else if gid != self.rgid && gid != self.sgid {
            return Err(Errno::EPERM);
        }
        self.egid = gid;
        self.fsgid = gid;
        Ok(())
    }

    /// setregid(rgid, egid).
    pub fn set_regid(&mut self, rgid: u32, egid: u32) -> Result<(), Errno> {
        let old = *self;
        let mut new = old;
        let privileged = old.capable(CAP_SETGID);
        if rgid != UNCHANGED {
            new.rgid = rgid;
            if rgid != old.rgid && rgid != old.egid && !privileged {
                return Err(Errno::EPERM);
            }
        }
        if egid != UNCHANGED {
            new.egid = egid;
            if egid != old.rgid && egid != old.egid && egid != old.sgid && !privileged {
                return Err(Errno::EPERM);
            }
        }
        if rgid != UNCHANGED || (egid != UNCHANGED && egid != old.rgid) {
            new.sgid = new.egid;
        }
        new.fsgid = new.egid;
        *self = new;
        Ok(())
    }

    /// setresgid(rgid, egid, sgid).
    pub fn set_resgid(&mut self, rgid: u32, egid: u32, sgid: u32) -> Result<(), Errno> {
        let old = *self;
        let noop = (rgid == UNCHANGED || rgid == old.rgid)
            && (egid == UNCHANGED || (egid == old.egid && egid == old.fsgid))
            && (sgid == UNCHANGED || sgid == old.sgid);
        if noop {
            return Ok(());
        }
        let new_id =
            |id: u32| id != UNCHANGED && id != old.rgid && id != old.egid && id != old.sgid;
        if (new_id(rgid) || new_id(egid) || new_id(sgid)) && !old.capable(CAP_SETGID) {
            return Err(Errno::EPERM);
        }
        if rgid != UNCHANGED {
            self.rgid = rgid;
        }
        if egid != UNCHANGED {
            self.egid = egid;
        }
        if sgid != UNCHANGED {
            self.sgid = sgid;
        }
        self.fsgid = self.egid;
        Ok(())
    }

    /// setfsgid(gid): the old file-system gid, changed or not.
    pub fn set_fsgid(&mut self, gid: u32) -> u32 {
        let old = self.fsgid;
        if gid == UNCHANGED {
            return old;
        }
        if [self.rgid, self.egid, self.sgid, self.fsgid].contains(&gid) || self.capable(CAP_SETGID)
        {
            self.fsgid = gid;
        }
        old
    }

    /// What a uid change does to the capabilities (Linux's
    /// `cap_emulate_setxuid`): leaving uid 0 in all three ids drops the
    /// permitted and effective sets (unless PR_SET_KEEPCAPS) and the
    /// ambient one; an effective uid leaving 0 drops the effective set,
    /// one coming back to 0 raises it to the permitted set.
    fn fix_caps(&mut self, old: &Creds) {
        let was_root = old.ruid == 0 || old.euid == 0 || old.suid == 0;
        let is_root = self.ruid == 0 || self.euid == 0 || self.suid == 0;
        if was_root && !is_root {
            if !self.keep_caps {
                self.cap_permitted = 0;
                self.cap_effective = 0;
            }
            self.cap_ambient = 0;
        }
        if old.euid == 0 && self.euid != 0 {
            self.cap_effective = 0;
        }
        if old.euid != 0 && self.euid == 0 {
            self.cap_effective = self.cap_permitted;
        }
    }

    /// What execve makes of them (Linux's `cap_bprm_creds_from_file` for
    /// a file without capabilities, and `setuid`/`setgid` bits as
    /// `bprm_fill_uid` reads them: `owner` is the program's (mode,
    /// uid, gid); `nosuid` when no_new_privs forbids them): a real or
    /// effective uid of 0 gets every capability of the bounding set, an
    /// effective one of 0 has them effective; the saved ids become the
    /// effective ones; PR_SET_KEEPCAPS ends.
    pub fn exec(&mut self, owner: (u32, u32, u32), nosuid: bool) {
        let (mode, uid, gid) = owner;
        if !nosuid {
            let (euid, egid) = (self.euid, self.egid);
            if mode & 0o4000 != 0 {
                self.euid = uid;
            }
            // Set-group-ID without group execute is mandatory locking,
            // not a set-gid program.
            if mode & 0o2010 == 0o2010 {
                self.egid = gid;
            }
            // A program that changes ids starts without ambient ones.
            if (self.euid, self.egid) != (euid, egid) {
                self.cap_ambient = 0;
            }
        }
        if self.euid == 0 || self.ruid == 0 {
            self.cap_permitted = self.cap_bounding | self.cap_inheritable;
        } else {
            self.cap_permitted = self.cap_ambient;
        }
        self.cap_effective = if self.euid == 0 {
            self.cap_permitted
        } else {
            self.cap_ambient
        };
        self.suid = self.euid;
        self.fsuid = self.euid;
        self.sgid = self.egid;
        self.fsgid = self.egid;
        self.keep_caps = false;
    }

    /// capset's new sets, by Linux's `cap_capset` rules (`EPERM` where
    /// they would grow what it may have).
    pub fn set_caps(
        &mut self,
        effective: u64,
        permitted: u64,
        inheritable: u64,
    ) -> Result<(), Errno> {
        let capped = !self.capable(CAP_SETPCAP);
        let within = |set: u64, of: u64| set & !of == 0;
        if capped && !within(inheritable, self.cap_inheritable | self.cap_permitted) {
            return Err(Errno::EPERM);
        }
        if !within(inheritable, self.cap_inheritable | self.cap_bounding)
            || !within(permitted, self.cap_permitted)
            || !within(effective, permitted)
        {
            return Err(Errno::EPERM);
        }
        self.cap_effective = effective;
        self.cap_permitted = permitted;
        self.cap_inheritable = inheritable;
        // Ambient capabilities must stay permitted and inheritable.
        self.cap_ambient &= permitted & inheritable;
        Ok(())
    }
}
