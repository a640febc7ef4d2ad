//! Console input and idling. When every guest process sleeps, the guest
//! kernel blocks in the idle hypercall: the host waits in epoll (through
//! event-manager) for console input or the guest's next deadline, so an
//! idle guest costs no host CPU.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_manager::{EventManager, EventOps, Events, MutEventSubscriber, SubscriberOps};
use vkernel_abi::Errno;
use vmm_sys_util::epoll::EventSet;
use vmspace::KernelRam;

/// Largest console read done in one hypercall.
pub const MAX_READ: u64 = 4096;

/// Notes that stdin became readable (or hung up).
struct StdinWatch {
    ready: bool,
}

impl MutEventSubscriber for StdinWatch {
    fn process(&mut self, events: Events, ops: &mut EventOps) {
        self.ready = true;
        if events.event_set().contains(EventSet::HANG_UP) {
            // End of input: stop watching, or every idle would wake at once.
            let _ = ops.remove(Events::empty_raw(events.fd()));
        }
    }

    fn init(&mut self, ops: &mut EventOps) {
        let stdin = std::io::stdin();
        if ops.add(Events::new(&stdin, EventSet::IN)).is_err() {
            // A regular file or /dev/null cannot be polled: it is always
            // ready, so reads never block and idle only waits for time.
            log::debug!("stdin cannot be polled; console input is read without waiting");
        }
    }
}

/// The console input and the idle wait.
pub struct Idle {
    events: EventManager<Arc<Mutex<dyn MutEventSubscriber + Send>>>,
    watch: Arc<Mutex<StdinWatch>>,
    input_closed: bool,
    /// Size changes of the host terminal already reported.
    winch_seen: u64,
    /// A Ctrl-] ended the last read (the escape's first byte).
    escape_held: bool,
    /// With a terminal: input read from it (the escape taken out) that
    /// the guest has yet to read. The host reads it as it comes, so the
    /// escape works while the guest reads nothing.
    pending: Vec<u8>,
    /// The user typed the escape: the run ends.
    pub escaped: bool,
}

impl Idle {
    /// Starts watching stdin.
    pub fn new() -> std::io::Result<Self> {
        let mut events = EventManager::<Arc<Mutex<dyn MutEventSubscriber + Send>>>::new()
            .map_err(|e| std::io::Error::other(format!("event manager: {e:?}")))?;
        let watch = Arc::new(Mutex::new(StdinWatch { ready: false }));
        events.add_subscriber(watch.clone());
        Ok(Idle {
            events,
            watch,
            input_closed: false,
            winch_seen: 0,
            escape_held: false,
            pending: Vec::new(),
            escaped: false,
        })
    }

    /// Waits until `deadline` (host-monotonic, None = no deadline),
    /// console input, or a change of the host terminal's size. Returns
    /// the `IDLE_INPUT` | `IDLE_WINCH` bits, 0 on timeout (or early, like
    /// a spurious wakeup, when the vCPU was kicked: see
    /// `slice_timer::kick_pending`). A deadline already past is a poll.
    pub fn wait(&mut self, deadline: Option<Instant>) -> i64 {
        let mut polled = false;
        loop {
            let mut bits = 0;
            if self.take_ready() {
                if crate::terminal::is_tty() {
                    self.fill();
                    if self.escaped {
                        return 0;
                    }
                    if !self.pending.is_empty() || self.input_closed {
                        bits |= vkernel_abi::IDLE_INPUT;
                    }
                } else {
                    bits |= vkernel_abi::IDLE_INPUT;
                }
            } else if !self.pending.is_empty() {
                bits |= vkernel_abi::IDLE_INPUT;
            }
            if crate::terminal::winch_pending(&mut self.winch_seen) {
                bits |= vkernel_abi::IDLE_WINCH;
            }
            if bits != 0 {
                return bits;
            }
            if crate::slice_timer::kick_pending() {
                return 0; // the vCPU was kicked (gdb's Ctrl-C): wake early
            }
            let timeout_ms = match deadline {
                None if self.input_closed => return 0, // nothing could ever wake us
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() && polled {
                        return 0;
                    }
                    polled = true;
                    // epoll counts milliseconds: round up so we never wake early.
                    left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
                }
            };
            if self.events.run_with_timeout(timeout_ms).is_err() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn take_ready(&mut self) -> bool {
        let mut w = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut w.ready)
    }

    /// Reads up to `len` bytes of console input into guest RAM at `buf`.
    /// Returns the count, 0 at end of input, or EAGAIN if none is ready.
    pub fn read(&mut self, ram: &KernelRam, buf: u64, len: u64) -> Result<i64, Errno> {
        let len = len.min(MAX_READ);
        // EFAULT comes first, even when there is nothing to read.
        ram.check(buf, len)?;
        if len == 0 {
            return Ok(0);
        }
        if crate::terminal::is_tty() {
            if self.pending.is_empty() {
                self.fill();
            }
            if self.pending.is_empty() {
                return if self.input_closed {
                    Ok(0)
                } else {
                    Err(Errno::EAGAIN)
                };
            }
            let n = (len as usize).min(self.pending.len());
            ram.write_slice(buf, &self.pending[..n])?;
            self.pending.drain(..n);
            return Ok(n as i64);
        }
        if self.input_closed {
            return Ok(0);
        }
        let stdin = std::io::stdin();
        if !readable_now(stdin.as_raw_fd()) {
            return Err(Errno::EAGAIN);
        }
        let mut bytes = vec![0u8; len as usize];
        let n = stdin.lock().read(&mut bytes).map_err(|_| Errno::EIO)?;
        if n == 0 {
            self.input_closed = true;
        }
        ram.write_slice(buf, &bytes[..n])?;
        Ok(n as i64)
    }
}

impl Idle {
    /// Reads what the terminal has into `pending` (bounded: a guest that
    /// never reads cannot grow it past [`PENDING_MAX`]), taking the
    /// escape out.
    fn fill(&mut self) {
        let stdin = std::io::stdin();
        if self.input_closed
            || self.pending.len() >= PENDING_MAX
            || !readable_now(stdin.as_raw_fd())
        {
            return;
        }
        let mut bytes = vec![0u8; MAX_READ as usize];
        match stdin.lock().read(&mut bytes) {
            Ok(0) | Err(_) => self.input_closed = true,
            Ok(n) => {
                bytes.truncate(n);
                if crate::terminal::filter_escape(&mut bytes, &mut self.escape_held) {
                    self.escaped = true;
                }
                self.pending.extend_from_slice(&bytes);
            }
        }
    }
}

/// Most terminal input the host holds for the guest.
const PENDING_MAX: usize = 64 * 1024;

/// Whether a read of `fd` would not block.
fn readable_now(fd: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
}
