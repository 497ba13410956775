//! Adaptive batch size: aim every batch at a target duration from a moving average of the
//! time one row takes, grow slowly (a sudden 10× batch is how a backfill turns into a lock
//! pile-up) and back off fast when the database pushes back.

use std::time::Duration;

/// Bounds and pace for [`BatchSizer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizerConfig {
    pub target: Duration,
    pub min_rows: u32,
    pub max_rows: u32,
    pub initial_rows: u32,
    /// Largest growth factor from one batch to the next.
    pub max_growth: f64,
    /// Weight of the newest observation in the moving average.
    pub smoothing: f64,
}

impl Default for SizerConfig {
    fn default() -> Self {
        SizerConfig {
            target: Duration::from_millis(250),
            min_rows: 100,
            max_rows: 50_000,
            initial_rows: 1_000,
            max_growth: 1.2,
            smoothing: 0.3,
        }
    }
}

/// Chooses how many rows the next batch covers.
#[derive(Debug, Clone)]
pub struct BatchSizer {
    config: SizerConfig,
    current: u32,
    secs_per_row: Option<f64>,
}

impl BatchSizer {
    pub fn new(config: SizerConfig) -> Self {
        Self::resume(config, config.initial_rows)
    }

    /// Continues from a size recorded in the ledger.
    pub fn resume(config: SizerConfig, rows: u32) -> Self {
        let current = rows.clamp(config.min_rows, config.max_rows.max(config.min_rows));
        BatchSizer { config, current, secs_per_row: None }
    }

    pub fn current(&self) -> u32 {
        self.current
    }

    /// Records a finished batch of `rows` rows that took `elapsed`, and picks the next size.
    /// Batches covering no rows teach nothing and are ignored.
    pub fn observe(&mut self, rows: u64, elapsed: Duration) {
        if rows == 0 {
            return;
        }
        let sample = elapsed.as_secs_f64() / rows as f64;
        let avg = match self.secs_per_row {
            Some(prev) => prev + self.config.smoothing * (sample - prev),
            None => sample,
        };
        self.secs_per_row = Some(avg);
        let ideal = if avg > 0.0 { self.config.target.as_secs_f64() / avg } else { f64::MAX };
        let ceiling = f64::from(self.current) * self.config.max_growth;
        self.current = clamp_rows(ideal.min(ceiling), &self.config);
    }

    /// A timeout or throttle signal: halve the next batch.
    pub fn halve(&mut self) {
        self.current = clamp_rows(f64::from(self.current) / 2.0, &self.config);
    }

    /// An operator's rate limit bounds one batch to what the limit allows per target period,
    /// so a rate change takes effect on the next batch instead of after one huge one.
    pub fn limit_to_rate(&mut self, rows_per_sec: f64) {
        let allowed = rows_per_sec * self.config.target.as_secs_f64();
        if allowed < f64::from(self.current) {
            self.current = clamp_rows(allowed, &self.config);
        }
    }
}

fn clamp_rows(rows: f64, c: &SizerConfig) -> u32 {
    let max = c.max_rows.max(c.min_rows);
    if rows.is_nan() {
        return c.min_rows;
    }
    (rows.floor().max(f64::from(c.min_rows)).min(f64::from(max))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn starts_at_the_initial_size() {
        assert_eq!(BatchSizer::new(SizerConfig::default()).current(), 1_000);
    }

    #[test]
    fn growth_is_at_most_twenty_percent_per_batch() {
        let mut s = BatchSizer::new(SizerConfig::default());
        // 1,000 rows in 10 ms: the ideal is 25,000 rows, but one step may only reach 1,200.
        s.observe(1_000, ms(10));
        assert_eq!(s.current(), 1_200);
        s.observe(1_200, ms(12));
        assert_eq!(s.current(), 1_440);
    }

    #[test]
    fn converges_on_the_target_duration() {
        let mut s = BatchSizer::new(SizerConfig::default());
        // 50 µs per row: 250 ms is 5,000 rows.
        for _ in 0..100 {
            let rows = u64::from(s.current());
            s.observe(rows, Duration::from_micros(50 * rows));
        }
        assert_eq!(s.current(), 5_000);
    }

    #[test]
    fn shrinks_at_once_when_batches_are_slow() {
        let mut s = BatchSizer::new(SizerConfig::default());
        s.observe(1_000, ms(1_000));
        assert_eq!(s.current(), 250);
    }

    #[test]
    fn stays_within_bounds() {
        let mut s = BatchSizer::new(SizerConfig::default());
        s.observe(1_000, ms(100_000));
        assert_eq!(s.current(), 100);
        s.halve();
        assert_eq!(s.current(), 100);
        let mut fast = BatchSizer::resume(SizerConfig::default(), 49_000);
        fast.observe(49_000, ms(1));
        assert_eq!(fast.current(), 50_000);
        assert_eq!(BatchSizer::resume(SizerConfig::default(), 1_000_000).current(), 50_000);
    }

    #[test]
    fn halves_on_a_signal() {
        let mut s = BatchSizer::new(SizerConfig::default());
        s.halve();
        assert_eq!(s.current(), 500);
    }

    #[test]
    fn a_rate_limit_caps_one_batch() {
        let mut s = BatchSizer::new(SizerConfig::default());
        s.limit_to_rate(2_000.0);
        assert_eq!(s.current(), 500);
    }

    #[test]
    fn empty_batches_are_ignored() {
        let mut s = BatchSizer::new(SizerConfig::default());
        s.observe(0, ms(500));
        assert_eq!(s.current(), 1_000);
    }
}
