//! Duration percentiles from the rollups' histograms (migration
//! `20261201000001_rollup_duration_histograms.sql` puts durations in buckets; this module only
//! reads them back, so the two must agree on the buckets' values).
//!
//! Bucket 0 holds durations under 1 ms and stands for 0; bucket b ≥ 1 holds (γ^(b-2), γ^(b-1)]
//! ms and stands for 2γ^(b-1)/(γ+1), which is within (γ-1)/(γ+1) = 1% of every duration in it.
//! A percentile is read the way `percentile_cont` reads it: between the two ranks around
//! p·(n-1), interpolated; both ranks' values are within 1%, so their interpolation is too.

/// The ratio between consecutive bucket bounds: 1.01 / 0.99, for a relative error of 1%.
const GAMMA: f64 = 1.01 / 0.99;

/// The largest relative error of a percentile read from a histogram, against the exact one.
pub const RELATIVE_ERROR: f64 = (GAMMA - 1.0) / (GAMMA + 1.0);
const _: () = assert!(RELATIVE_ERROR <= 0.01 + 1e-12);

/// Counts of durations per bucket, gathered from any number of rollup rows.
#[derive(Debug, Default)]
pub struct DurationHistogram {
    counts: Vec<(i16, i64)>,
}

impl DurationHistogram {
    /// Adds one rollup row's `duration_histogram`: 6-byte entries, a big-endian `i16` bucket
    /// then a big-endian `i32` count.
    pub fn add(&mut self, histogram: &[u8]) {
        self.counts.extend(histogram.chunks_exact(6).map(|entry| {
            let bucket = i16::from_be_bytes([entry[0], entry[1]]);
            (bucket, i64::from(i32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]])))
        }));
    }

    /// The `fractions` (each in [0, 1]) as `percentile_cont` would give them, within
    /// [`RELATIVE_ERROR`]; `None` each when the histogram holds no duration.
    pub fn percentiles<const N: usize>(mut self, fractions: [f64; N]) -> [Option<f64>; N] {
        self.counts.sort_unstable_by_key(|&(bucket, _)| bucket);
        let total: i64 = self.counts.iter().map(|&(_, count)| count).sum();
        fractions.map(|fraction| {
            (total > 0).then(|| {
                let position = fraction * (total - 1) as f64;
                let (below, above) =
                    (self.value_at(position.floor() as i64), self.value_at(position.ceil() as i64));
                below + (position - position.floor()) * (above - below)
            })
        })
    }

    /// The value standing for the duration of rank `rank` (0-based) in the sorted counts.
    fn value_at(&self, rank: i64) -> f64 {
        let mut seen = 0;
        for &(bucket, count) in &self.counts {
            seen += count;
            if rank < seen {
                return bucket_value(bucket);
            }
        }
        self.counts.last().map_or(0.0, |&(bucket, _)| bucket_value(bucket))
    }
}

fn bucket_value(bucket: i16) -> f64 {
    if bucket <= 0 {
        0.0
    } else {
        2.0 * GAMMA.powi(i32::from(bucket) - 1) / (GAMMA + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bucket the migration's `execution_duration_bucket` gives (its formula, in Rust).
    fn bucket_of(duration_ms: i64) -> i16 {
        if duration_ms < 1 {
            0
        } else {
            (1.0 + ((duration_ms as f64).ln() / GAMMA.ln()).ceil()) as i16
        }
    }

    fn exact_percentile(sorted: &[i64], fraction: f64) -> f64 {
        let position = fraction * (sorted.len() - 1) as f64;
        let (below, above) =
            (sorted[position.floor() as usize] as f64, sorted[position.ceil() as usize] as f64);
        below + (position - position.floor()) * (above - below)
    }

    #[test]
    fn every_bucket_value_is_within_the_bound_of_the_durations_it_holds() {
        for duration in (1..100_000).chain((1..1_000).map(|i| i * 7_919_993)) {
            let value = bucket_value(bucket_of(duration));
            let error = (value - duration as f64).abs() / duration as f64;
            assert!(error <= RELATIVE_ERROR + 1e-12, "{duration} ms → {value}: {error}");
        }
        assert_eq!(bucket_value(bucket_of(0)), 0.0);
    }

    #[test]
    fn percentiles_are_within_the_bound_of_percentile_cont_however_the_rows_split() {
        let durations: Vec<i64> = (0..997).map(|i| 1_000 + (i * 7_919) % 3_600_000).collect();
        let mut sorted = durations.clone();
        sorted.sort_unstable();
        // Spread over several "rollup rows", as a group made of many keys would be.
        let mut histogram = DurationHistogram::default();
        for part in durations.chunks(100) {
            let mut buckets: Vec<i16> = part.iter().map(|&duration| bucket_of(duration)).collect();
            buckets.sort_unstable();
            buckets.dedup();
            let mut row = Vec::new();
            for bucket in buckets {
                let count = part.iter().filter(|&&duration| bucket_of(duration) == bucket).count() as i32;
                row.extend(bucket.to_be_bytes());
                row.extend(count.to_be_bytes());
            }
            histogram.add(&row);
        }
        let fractions = [0.0, 0.01, 0.5, 0.95, 0.999, 1.0];
        for (fraction, read) in fractions.into_iter().zip(histogram.percentiles(fractions)) {
            let exact = exact_percentile(&sorted, fraction);
            let error = (read.unwrap() - exact).abs() / exact;
            assert!(error <= RELATIVE_ERROR + 1e-12, "p{fraction}: {read:?} vs {exact}");
        }
        assert_eq!(DurationHistogram::default().percentiles([0.5]), [None]);
    }
}
