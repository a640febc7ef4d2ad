//! The clock page: time the guest reads without an exit. The host
//! publishes, at [`crate::layout::CLOCK_PAGE_ADDR`], the scale and offset
//! that turn the guest's TSC into the host's monotonic clock (nanoseconds
//! since vkernel started, the same clock as the `clock` hypercall), in the
//! layout of KVM's `pvclock_vcpu_time_info` so the math is the standard
//! one, followed by vkernel's own field: the realtime offset.
//!
//! The host refreshes the page whenever the guest kernel makes a hypercall
//! and a millisecond has passed since the last refresh, so a TSC that
//! drifts from the host's clock is pulled back; each refresh starts the new
//! line where the old one is at that moment or later, so readings never go
//! back. Without an invariant TSC (or with `--clock hypercall`) the stable
//! flag is clear and readers use the `clock` hypercall.

/// KVM's `struct pvclock_vcpu_time_info` (32 bytes) and the realtime
/// offset (vkernel's, at byte 32).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockPage {
    /// Odd while the host writes; readers retry until it is even and
    /// unchanged around their read.
    pub version: u32,
    /// Zero.
    pub pad0: u32,
    /// The guest TSC at `system_time`.
    pub tsc_timestamp: u64,
    /// Host monotonic ns (since vkernel started) at `tsc_timestamp`.
    pub system_time: u64,
    /// ns = ((tsc - tsc_timestamp) << tsc_shift) * mul >> 32 (a negative
    /// shift shifts right).
    pub tsc_to_system_mul: u32,
    /// See `tsc_to_system_mul`.
    pub tsc_shift: i8,
    /// [`PVCLOCK_TSC_STABLE_BIT`]: the TSC may be used.
    pub flags: u8,
    /// Zero.
    pub pad: [u8; 2],
    /// Host realtime ns (since the epoch) minus host monotonic ns, as of
    /// the last refresh: realtime = monotonic + this.
    pub realtime_offset_ns: u64,
}

/// `ClockPage::flags`: the TSC is invariant and the page is kept fresh.
pub const PVCLOCK_TSC_STABLE_BIT: u8 = 1;

/// Size of [`ClockPage`].
pub const CLOCK_PAGE_BYTES: usize = core::mem::size_of::<ClockPage>();
const _: () = assert!(CLOCK_PAGE_BYTES == 40);

impl ClockPage {
    /// The page for a TSC of `tsc_khz` that reads `tsc` at monotonic
    /// `system_time` ns; `None` for a frequency of 0.
    pub fn new(tsc_khz: u32, tsc: u64, system_time: u64, realtime_offset_ns: u64) -> Option<Self> {
        let (mul, shift) = scale(tsc_khz)?;
        Some(ClockPage {
            tsc_timestamp: tsc,
            system_time,
            tsc_to_system_mul: mul,
            tsc_shift: shift,
            flags: PVCLOCK_TSC_STABLE_BIT,
            realtime_offset_ns,
            ..ClockPage::default()
        })
    }

    /// Monotonic ns at TSC value `tsc` (the standard pvclock math, in 128
    /// bits so a long gap since the last refresh cannot overflow). A TSC
    /// behind `tsc_timestamp` reads as `system_time`.
    #[inline]
    pub fn ns_at(&self, tsc: u64) -> u64 {
        let delta = tsc.saturating_sub(self.tsc_timestamp) as u128;
        let shifted = if self.tsc_shift >= 0 {
            delta << self.tsc_shift
        } else {
            delta >> (-(self.tsc_shift as i32))
        };
        let ns = (shifted * self.tsc_to_system_mul as u128) >> 32;
        self.system_time.saturating_add(ns as u64)
    }

    /// Whether readers may use the TSC.
    #[inline]
    pub fn stable(&self) -> bool {
        self.flags & PVCLOCK_TSC_STABLE_BIT != 0 && self.tsc_to_system_mul != 0
    }
}

/// `(mul, shift)` with ns = ((ticks << shift) * mul) >> 32 for a TSC of
/// `tsc_khz`: the smallest shift >= 0 that keeps `mul` in 32 bits.
pub fn scale(tsc_khz: u32) -> Option<(u32, i8)> {
    if tsc_khz == 0 {
        return None;
    }
    // ns per tick = 1e6 / khz; mul = 2^32 * 1e6 / (khz * 2^shift).
    let mut shift = 0i8;
    loop {
        let mul = ((1_000_000u128) << 32) / ((tsc_khz as u128) << shift);
        if mul <= u32::MAX as u128 {
            return Some((mul as u32, shift));
        }
        shift += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_of_ticks_is_a_second() {
        for khz in [100_000u32, 1_000_000, 2_450_000, 3_700_123] {
            let p = ClockPage::new(khz, 1000, 5, 0).unwrap();
            let ns = p.ns_at(1000 + khz as u64 * 1000) - 5;
            assert!((ns as i64 - 1_000_000_000).abs() < 10, "{khz}: {ns}");
        }
    }

    #[test]
    fn an_hour_without_refresh_does_not_overflow() {
        let p = ClockPage::new(3_000_000, 0, 0, 0).unwrap();
        let hour = p.ns_at(3_000_000_000 * 3600);
        assert!((hour as i64 - 3_600_000_000_000).abs() < 1000);
        assert_eq!(p.ns_at(0), 0);
    }

    #[test]
    fn no_frequency_no_page() {
        assert!(ClockPage::new(0, 0, 0, 0).is_none());
        assert!(!ClockPage::default().stable());
    }
}
