//! The clock page's publisher (see `vkernel_abi::clock`): the guest TSC's
//! frequency from KVM, checked invariant on the host, and a refresh of the
//! page whenever the guest kernel comes to the host and a millisecond has
//! passed, so a TSC that drifts from the host's clock is pulled back.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vkernel_abi::clock::ClockPage;
use vkernel_abi::layout::CLOCK_PAGE_ADDR;
use vmspace::KernelRam;

use crate::vcpu::Vcpu;

/// How often the page is refreshed at most.
const REFRESH: Duration = Duration::from_millis(1);

/// What the guest reads its clock from (`--clock`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ClockSource {
    /// The TSC through the clock page, where the host's TSC is invariant.
    Tsc,
    /// The `clock` hypercall only (the page says "not stable").
    Hypercall,
}

/// Keeps the clock page fresh.
pub struct ClockPublisher {
    /// The guest TSC's frequency, when the page is in use.
    tsc_khz: Option<u32>,
    started: Instant,
    last: Option<Instant>,
    page: ClockPage,
}

/// Whether the host's TSC runs at a constant rate in every power state
/// (CPUID 0x8000_0007 EDX bit 8, "invariant TSC").
fn host_tsc_invariant() -> bool {
    let max = std::arch::x86_64::__cpuid(0x8000_0000).eax;
    max >= 0x8000_0007 && std::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0
}

impl ClockPublisher {
    /// A publisher for `vcpu`'s TSC, or a disabled one (the guest then
    /// uses the hypercall) when asked, when the host's TSC is not
    /// invariant, or when KVM cannot say its frequency.
    pub fn new(vcpu: &impl Vcpu, source: ClockSource, started: Instant) -> Self {
        let tsc_khz = match source {
            ClockSource::Hypercall => {
                log::info!("clock: the hypercall (--clock hypercall)");
                None
            }
            ClockSource::Tsc if !host_tsc_invariant() => {
                log::warn!(
                    "clock: the host's TSC is not invariant: the guest uses the clock hypercall"
                );
                None
            }
            ClockSource::Tsc => match vcpu.tsc_khz() {
                Some(khz) if khz > 0 => {
                    log::info!("clock: the TSC at {khz} kHz through the clock page");
                    Some(khz)
                }
                _ => {
                    log::warn!("clock: KVM does not say the TSC's frequency: the guest uses the clock hypercall");
                    None
                }
            },
        };
        ClockPublisher {
            tsc_khz,
            started,
            last: None,
            page: ClockPage::default(),
        }
    }

    /// Refreshes the page if it is in use and `force` or a millisecond
    /// has passed. The new line starts at or after where the old one is
    /// at this TSC, so the guest's readings never go back.
    pub fn refresh(&mut self, vcpu: &impl Vcpu, ram: &KernelRam, force: bool, now: Instant) {
        let Some(khz) = self.tsc_khz else {
            return;
        };
        if !force && self.last.is_some_and(|l| now.duration_since(l) < REFRESH) {
            return;
        }
        let Some(tsc) = vcpu.guest_tsc() else {
            return;
        };
        let mono = now.duration_since(self.started).as_nanos() as u64;
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let floor = if self.page.stable() {
            self.page.ns_at(tsc)
        } else {
            0
        };
        let Some(mut page) = ClockPage::new(khz, tsc, mono.max(floor), real.saturating_sub(mono))
        else {
            return;
        };
        // Even: the vCPU is not running while the host writes, so no
        // reader can see the page half-written (pvclock's odd versions are
        // for writers racing readers).
        page.version = self.page.version.wrapping_add(2);
        if ram.write_obj(CLOCK_PAGE_ADDR, &page).is_err() {
            return;
        }
        self.page = page;
        self.last = Some(now);
    }
}
