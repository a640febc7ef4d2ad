//! The RUN time slice: a per-thread POSIX timer (SIGEV_THREAD_ID) whose
//! signal handler sets `kvm_run.immediate_exit`, so `KVM_RUN` returns EINTR
//! within a few microseconds of the deadline (KVM-NOTES: 20/20, overshoot
//! 12-20 µs). Setting immediate_exit, not only interrupting the ioctl, closes
//! the race of a signal that lands just before `KVM_RUN` is entered.

use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::{Duration, Instant};

use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

/// `&kvm_run.immediate_exit` of the vCPU thread (one vCPU per process).
static IMMEDIATE_EXIT: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn on_slice_signal(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let p = IMMEDIATE_EXIT.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: p points into the vCPU's kvm_run mapping, which lives as
        // long as the SliceTimer that published it; a byte store is
        // async-signal-safe.
        unsafe { std::ptr::write_volatile(p, 1) };
    }
}

/// Whether the vCPU was kicked (time slice or debugger) and the next
/// `KVM_RUN` will return at once: host waits on the vCPU thread (idle)
/// end early so the run loop sees it.
pub fn kick_pending() -> bool {
    let p = IMMEDIATE_EXIT.load(Ordering::Acquire);
    // SAFETY: p, when set, points into the live kvm_run mapping (see
    // on_slice_signal); a byte read is always valid there.
    !p.is_null() && unsafe { std::ptr::read_volatile(p) } != 0
}

/// A one-shot timer that interrupts `KVM_RUN` on this thread.
///
/// It is not cancelled when a process traps: a system call is two exits,
/// and a `timer_settime` to disarm at the trap and another to arm at the
/// next RUN cost ~7 µs of its ~110 µs here (perf). The next RUN keeps the
/// timer when it would fire within the last quarter of the new slice, so
/// a slice may end up to a quarter early (as a periodic tick ends it), never
/// late. A timer that fires while the guest kernel is on the vCPU costs
/// one `KVM_RUN` that returns at once; before a hypercall that can block in
/// the host, the run loop disarms it (see `Call::keeps_slice_timer`).
pub struct SliceTimer {
    timer: libc::timer_t,
    /// When the armed timer fires (it may have fired already); `None`
    /// when disarmed.
    deadline: Option<Instant>,
}

/// The signal that interrupts `KVM_RUN` (the debugger's watcher sends it
/// too).
pub fn signal() -> libc::c_int {
    SIGRTMIN() + 1
}

impl SliceTimer {
    /// Creates the timer for the calling thread, which must be the vCPU
    /// thread; `immediate_exit` is that vCPU's `kvm_run.immediate_exit`.
    pub fn new(immediate_exit: *mut u8) -> std::io::Result<SliceTimer> {
        IMMEDIATE_EXIT.store(immediate_exit, Ordering::Release);
        register_signal_handler(signal(), on_slice_signal)
            .map_err(|e| std::io::Error::from_raw_os_error(e.errno()))?;
        // SAFETY: zeroed sigevent is a valid starting value; we fill the
        // fields SIGEV_THREAD_ID needs.
        let mut sev: libc::sigevent = unsafe { std::mem::zeroed() };
        sev.sigev_notify = libc::SIGEV_THREAD_ID;
        sev.sigev_signo = signal();
        // SAFETY: gettid has no preconditions.
        sev.sigev_notify_thread_id = unsafe { libc::syscall(libc::SYS_gettid) } as libc::c_int;
        let mut timer: libc::timer_t = std::ptr::null_mut();
        // SAFETY: sev and timer are valid for the call.
        if unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut timer) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(SliceTimer {
            timer,
            deadline: None,
        })
    }

    fn set(&mut self, us: u64) {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (us / 1_000_000) as libc::time_t,
                tv_nsec: ((us % 1_000_000) * 1000) as libc::c_long,
            },
        };
        // SAFETY: self.timer is a live timer; spec is valid.
        unsafe { libc::timer_settime(self.timer, 0, &spec, std::ptr::null_mut()) };
    }

    /// Fires once between `us * 3 / 4` and `us` microseconds after `now`
    /// (0 = never): a pending timer that fires in that window is kept.
    pub fn arm(&mut self, us: u64, now: Instant) {
        if us == 0 {
            self.disarm();
            return;
        }
        let want = now + Duration::from_micros(us);
        let early = Duration::from_micros(us / 4);
        if self
            .deadline
            .is_some_and(|d| d > now && d <= want && want - d <= early)
        {
            return;
        }
        self.set(us);
        self.deadline = Some(want);
    }

    /// Whether the armed timer has fired (its slice is over).
    pub fn expired(&self) -> bool {
        if self.deadline.is_none() {
            return false;
        }
        // SAFETY: zeroed itimerspec is valid; self.timer is a live timer.
        let mut cur: libc::itimerspec = unsafe { std::mem::zeroed() };
        // SAFETY: as above; cur is valid for the call.
        if unsafe { libc::timer_gettime(self.timer, &mut cur) } != 0 {
            return true;
        }
        cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0
    }

    /// Cancels a pending expiry.
    pub fn disarm(&mut self) {
        if self.deadline.take().is_some() {
            self.set(0);
        }
    }
}

impl Drop for SliceTimer {
    fn drop(&mut self) {
        IMMEDIATE_EXIT.store(std::ptr::null_mut(), Ordering::Release);
        // SAFETY: self.timer is live and deleted once.
        unsafe { libc::timer_delete(self.timer) };
    }
}
