//! Journeys (SPEC §3): critical user-facing operations, identified by their entry span, with
//! an owner and SLOs. Symptoms are measured on them.

use serde::Serialize;

use crate::model::Nanos;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Journey {
    pub name: String,
    pub entry_service: String,
    /// Span name or `http.route` of the entry SERVER span.
    pub entry_operation: String,
    /// The customer-facing team; `None` means "the owner of the entry service".
    pub owner: Option<String>,
    pub slo: Slo,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Slo {
    /// Target fraction of requests without error at the entry span (0.999 for 99.9%).
    pub availability: Option<f64>,
    pub latency: Option<LatencySlo>,
    pub period: Nanos,
    pub tiers: Vec<BurnTier>,
    /// Windows with fewer requests than this never fire (low-traffic guard).
    pub min_requests: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LatencySlo {
    pub threshold: Nanos,
    /// Target fraction of requests faster than the threshold.
    pub target: f64,
}

/// One multi-window burn-rate alert: fires when the burn rate over both windows exceeds `burn`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BurnTier {
    pub name: String,
    pub long: Nanos,
    pub short: Nanos,
    pub burn: f64,
    /// Page tiers trigger routing; ticket tiers create a non-paging notice.
    pub page: bool,
}

const HOUR: Nanos = 3_600 * 1_000_000_000;
const MINUTE: Nanos = 60 * 1_000_000_000;
const DAY: Nanos = 24 * HOUR;

impl BurnTier {
    /// The Google SRE Workbook tiers for a 30-day period, scaled to `period` the way Sloth
    /// does: windows keep their length, burn factors scale with `period / 30d` so each tier
    /// still spends the same share of the budget (2%, 5%, 10%, 10%).
    pub fn google(period: Nanos) -> Vec<BurnTier> {
        let scale = period as f64 / (30 * DAY) as f64;
        let tier = |name: &str, long: Nanos, short: Nanos, burn: f64, page: bool| BurnTier {
            name: name.to_string(),
            long,
            short,
            burn: burn * scale,
            page,
        };
        vec![
            tier("page-fast", HOUR, 5 * MINUTE, 14.4, true),
            tier("page-slow", 6 * HOUR, 30 * MINUTE, 6.0, true),
            tier("ticket-fast", DAY, 2 * HOUR, 3.0, false),
            tier("ticket-slow", 3 * DAY, 6 * HOUR, 1.0, false),
        ]
    }

    /// Share of the period's error budget this tier consumes when it fires at the threshold.
    pub fn budget_consumed(&self, period: Nanos) -> f64 {
        self.burn * self.long as f64 / period as f64
    }
}

impl Journey {
    /// The latency threshold used to call a trace slow, if the journey has a latency SLO.
    pub fn latency_threshold(&self) -> Option<Nanos> {
        self.slo.latency.map(|latency| latency.threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_tiers_for_30_days_are_the_workbook_numbers() {
        let tiers = BurnTier::google(30 * DAY);
        let burns: Vec<f64> = tiers.iter().map(|tier| tier.burn).collect();
        assert_eq!(burns, vec![14.4, 6.0, 3.0, 1.0]);
        // 14.4x over 1h spends 2% of a 30-day budget; 6x over 6h spends 5%; 3x over 1d and
        // 1x over 3d spend 10% each.
        let spent: Vec<f64> =
            tiers.iter().map(|tier| (tier.budget_consumed(30 * DAY) * 1000.0).round() / 1000.0).collect();
        assert_eq!(spent, vec![0.02, 0.05, 0.1, 0.1]);
    }

    #[test]
    fn google_tiers_scale_to_28_days_like_sloth() {
        let tiers = BurnTier::google(28 * DAY);
        let burns: Vec<f64> = tiers.iter().map(|tier| (tier.burn * 1000.0).round() / 1000.0).collect();
        // 14.4 * 28/30 = 13.44, 6 * 28/30 = 5.6, 3 * 28/30 = 2.8, 1 * 28/30 = 0.933
        assert_eq!(burns, vec![13.44, 5.6, 2.8, 0.933]);
        // Same budget share per tier as in 30 days.
        let spent: Vec<f64> =
            tiers.iter().map(|tier| (tier.budget_consumed(28 * DAY) * 1000.0).round() / 1000.0).collect();
        assert_eq!(spent, vec![0.02, 0.05, 0.1, 0.1]);
    }
}
